"""The Python API without training: bad input raises at once, a checkpoint becomes a policy that
acts as its network does, and ``import apex_dqn`` stays light."""

from __future__ import annotations

import dataclasses
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

import apex_dqn
from apex_dqn.algo.networks import build_q_network, get_weights
from apex_dqn.api import Policy, _set_keys, load_policy
from apex_dqn.config import Config, ConfigError, EnvConfig, NetworkConfig, TrainConfig
from apex_dqn.files.checkpoint import FORMAT, save_checkpoint


def test_import_apex_dqn_loads_no_torch_ray_or_hydra():
    code = (
        "import sys, apex_dqn\n"
        "print([m for m in ('torch', 'ray', 'hydra', 'omegaconf') if m in sys.modules])\n"
        "apex_dqn.train, apex_dqn.load_policy\n"
        "print([m for m in ('torch', 'ray', 'hydra', 'omegaconf') if m in sys.modules])\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.splitlines() == ["[]", "[]"], out.stdout


def test_the_api_names_are_the_api_modules():
    assert apex_dqn.train is apex_dqn.api.train
    assert apex_dqn.load_policy is apex_dqn.api.load_policy
    assert {"train", "load_policy", "TrainResult"} <= set(dir(apex_dqn))
    with pytest.raises(AttributeError, match="no attribute 'trian'"):
        _ = apex_dqn.trian


@pytest.mark.parametrize(
    ("given", "fragment"),
    [
        (["+actors.num_actor=3"], "unknown key actors.num_actor; did you mean actors.num_actors?"),
        (["actors.num_actors=0"], "actors.num_actors must be an integer in [1, 4096], got 0"),
        (["learner.lr=fast"], "learner.lr must be a number, got 'fast'"),
        (["env=pong"], "env must be one of atari, cartpole, minatar; got 'pong'"),
        (["seed=0,1"], "seed=0,1"),
        (["env.id=Pendulum-v1"], "needs a Discrete action space"),
        (["replay.capacity=32"], "replay.capacity / replay.num_shards must be >="),
    ],
)
def test_a_bad_override_raises_config_error_naming_the_key(tmp_path, given, fragment):
    with pytest.raises(ConfigError) as caught:
        apex_dqn.train(given, output_dir=tmp_path / "run")
    assert fragment in str(caught.value)
    assert not (tmp_path / "run").exists(), "nothing may be written for a bad config"


def test_a_bad_config_object_or_override_on_it_raises(tmp_path):
    config = Config(runtime="local")
    config.actors.num_actors = 0  # changed after construction: validated again
    with pytest.raises(ConfigError, match=r"actors\.num_actors must be an integer"):
        apex_dqn.train(config, output_dir=tmp_path)
    with pytest.raises(ConfigError, match=r"did you mean actors\.num_actors"):
        apex_dqn.train(Config(), overrides=["actors.num_actor=2"], output_dir=tmp_path)
    with pytest.raises(ConfigError, match=r"config groups \(env=minatar\) need a list"):
        apex_dqn.train(Config(), overrides=["env=minatar"], output_dir=tmp_path)
    with pytest.raises(TypeError, match="list of override strings"):
        apex_dqn.train("seed=3")  # type: ignore[arg-type]
    assert not any(tmp_path.iterdir())


def test_a_config_sets_the_keys_that_differ_from_the_defaults():
    config = Config(
        seed=3, train=TrainConfig(max_seconds=5.0), network=NetworkConfig(dueling=False)
    )
    assert _set_keys(config) == ["network.dueling=false", "train.max_seconds=5.0", "seed=3"]
    assert _set_keys(Config()) == []


def test_the_default_run_dir_is_the_clis_pattern_and_never_taken(tmp_path, monkeypatch):
    import datetime

    from apex_dqn.cli.train import default_run_dir

    class Clock(datetime.datetime):
        @classmethod
        def now(cls, tz=None):
            return cls(2026, 12, 1, 10, 0, 0)

    monkeypatch.setattr("hydra.core.utils.datetime", Clock)  # what ${now:...} reads
    monkeypatch.chdir(tmp_path)
    config = Config(env=EnvConfig(id="ALE/Pong-v5"), seed=7)
    first = default_run_dir(config)
    assert first == Path("outputs/2026-12-01/10-00-00-ALE-Pong-v5-seed7")
    first.mkdir(parents=True)
    assert default_run_dir(config) == Path("outputs/2026-12-01/10-00-00-ALE-Pong-v5-seed7-2")


def _checkpoint(tmp_path: Path, network: NetworkConfig, obs_shape: tuple[int, ...]) -> Path:
    """A run directory with a checkpoint.pt holding a seeded network's weights."""
    env_id = "MinAtar/Breakout-v1" if network.torso == "minatar" else "CartPole-v1"
    config = Config(env=EnvConfig(id=env_id), network=network)
    torch.manual_seed(0)
    net = build_q_network(network, obs_shape=obs_shape, num_actions=3)
    frames = len(obs_shape) > 1
    state = {
        "format": FORMAT,
        "config": dataclasses.asdict(config),
        "env": {
            "obs_shape": list(obs_shape),
            "obs_dtype": "uint8" if frames else "float32",
            "num_actions": 3,
            "reward_threshold": None,
        },
        "learner_steps": 42,
        "learner": {"online": {k: v.clone() for k, v in net.state_dict().items()}},
    }
    run = tmp_path / "run"
    save_checkpoint(run / "checkpoint.pt", state)
    return run


@pytest.mark.parametrize(
    ("torso", "obs_shape"), [("mlp", (4,)), ("minatar", (4, 10, 10))], ids=["numpy", "torch"]
)
def test_a_loaded_policy_acts_as_the_checkpoints_network(tmp_path, torso, obs_shape):
    network = NetworkConfig(torso=torso)
    run = _checkpoint(tmp_path, network, obs_shape)
    policy = load_policy(run)
    assert isinstance(policy, Policy) and policy.learner_steps == 42
    assert policy.checkpoint == (run / "checkpoint.pt").resolve()
    assert load_policy(run / "checkpoint.pt").checkpoint == policy.checkpoint

    rng = np.random.default_rng(1)
    obs_B = rng.integers(0, 2, (64, *obs_shape)) if torso != "mlp" else rng.normal(size=(64, 4))
    q_BA = policy.q_values(obs_B)
    net = build_q_network(network, obs_shape=obs_shape, num_actions=3)
    net.load_state_dict({k: torch.as_tensor(v) for k, v in policy.weights.items()})
    with torch.no_grad():
        expected_BA = net(torch.as_tensor(np.asarray(obs_B, dtype=policy.obs_dtype))).numpy()
    np.testing.assert_allclose(q_BA, expected_BA, rtol=1e-4, atol=1e-5)
    actions_B = policy.act(obs_B)
    assert actions_B.dtype == np.int64 and actions_B.shape == (64,)
    np.testing.assert_array_equal(actions_B, q_BA.argmax(axis=1))
    np.testing.assert_array_equal(actions_B, expected_BA.argmax(axis=1))
    assert [policy(obs) for obs in obs_B[:5]] == list(actions_B[:5])
    assert get_weights(net).keys() == policy.weights.keys()


def test_epsilon_gives_random_actions_from_the_policys_seed(tmp_path):
    run = _checkpoint(tmp_path, NetworkConfig(), (4,))
    obs_B = np.zeros((2000, 4), np.float32)
    greedy = load_policy(run).act(obs_B)
    assert len(set(greedy)) == 1
    noisy = load_policy(run, seed=5).act(obs_B, epsilon=0.5)
    assert 0.55 < np.mean(noisy == greedy) < 0.75  # 1/2 greedy + 1/2 * 1/3 by chance
    np.testing.assert_array_equal(noisy, load_policy(run, seed=5).act(obs_B, epsilon=0.5))
    with pytest.raises(ValueError, match="epsilon must be in"):
        load_policy(run).act(obs_B, epsilon=1.5)
    with pytest.raises(ValueError, match=r"shape \[B, \*\(4,\)\]"):
        load_policy(run).q_values(obs_B[0])


def test_load_policy_says_what_is_wrong_with_the_path(tmp_path):
    with pytest.raises(FileNotFoundError, match="does not exist"):
        load_policy(tmp_path / "nothing")
    with pytest.raises(FileNotFoundError, match=r"no checkpoint\.pt"):
        load_policy(tmp_path)
    junk = tmp_path / "junk.pt"
    junk.write_bytes(b"not a checkpoint")
    with pytest.raises(ConfigError, match="not a readable apex-dqn checkpoint"):
        load_policy(junk)


def test_a_policy_makes_the_runs_environment(tmp_path):
    run = _checkpoint(tmp_path, NetworkConfig(), (4,))
    env = load_policy(run).make_env()
    try:
        obs, _ = env.reset(seed=0)
        assert env.spec.id == "CartPole-v1" and obs.shape == (4,)
        assert load_policy(run)(obs) in (0, 1, 2)
    finally:
        env.close()
