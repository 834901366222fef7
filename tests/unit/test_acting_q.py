"""The Q-functions actors and the evaluator act with (apex_dqn.algo.acting_q): the numpy MLP
equals the torch network, and convolutional torsos act with the eager module, new weights
included."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
import torch

from apex_dqn.algo.acting_q import NumpyMLPQ, abs_td, mlp_weight_shapes
from apex_dqn.algo.losses import td_targets
from apex_dqn.algo.networks import build_q_network, get_weights
from apex_dqn.config import NetworkConfig


@pytest.mark.parametrize("dueling", [True, False])
@pytest.mark.parametrize("hidden", [[16], [32, 8, 8]])
def test_numpy_q_values_equal_the_torch_network(dueling, hidden):
    torch.manual_seed(0)
    net = build_q_network(
        NetworkConfig(hidden_sizes=hidden, dueling=dueling), obs_shape=(6,), num_actions=3
    )
    np_net = NumpyMLPQ(
        obs_dim=6, hidden_sizes=tuple(hidden), num_actions=3, dueling=dueling, seed=1
    )
    weights = get_weights(net)
    assert {k: v.shape for k, v in weights.items()} == mlp_weight_shapes(
        6, tuple(hidden), 3, dueling
    )
    obs = np.random.default_rng(0).normal(size=(33, 6)).astype(np.float32)
    before = np_net.q_values(obs)
    np_net.set_weights(weights)
    with torch.no_grad():
        expected = net(torch.from_numpy(obs)).numpy()
    np.testing.assert_allclose(np_net.q_values(obs), expected, rtol=1e-5, atol=1e-6)
    assert not np.allclose(before, expected), "its own initial weights were used"


def test_mismatched_weights_are_refused():
    np_net = NumpyMLPQ(obs_dim=4, hidden_sizes=(8,), num_actions=2, dueling=True, seed=0)
    with pytest.raises(ValueError, match="keys"):
        np_net.set_weights({"torso.1.weight": np.zeros((8, 4))})
    good = {k: np.zeros(s, np.float32) for k, s in mlp_weight_shapes(4, (8,), 2, True).items()}
    good["torso.1.weight"] = np.zeros((9, 4), np.float32)
    with pytest.raises(ValueError, match=r"torso\.1\.weight has shape"):
        np_net.set_weights(good)


def test_initial_priorities_equal_the_learners_double_q_target():
    rng = np.random.default_rng(0)
    q, next_q = rng.normal(size=(50, 3)), rng.normal(size=(50, 3))
    action = rng.integers(0, 3, 50)
    ret, disc = rng.normal(size=50), np.full(50, 0.97**3)
    done = rng.random(50) < 0.3
    # As an actor does: its one network stands in for the online and the target network.
    rows = np.arange(50)
    got = abs_td(
        q_taken_B=q[rows, action],
        next_v_B=next_q[rows, next_q.argmax(axis=1)],
        return_B=ret,
        discount_B=disc,
        done_B=done,
    )
    t = torch.from_numpy
    target = td_targets(
        return_B=t(ret),
        discount_B=t(disc),
        done_B=t(done),
        next_q_online_BA=t(next_q),
        next_q_target_BA=t(next_q),
        double_q=True,
    )
    want = (target - t(q).gather(1, t(action).unsqueeze(1)).squeeze(1)).abs().numpy()
    np.testing.assert_allclose(got, want, rtol=1e-6)


def test_an_mlp_actor_and_evaluator_never_import_torch():
    code = """
import sys
from apex_dqn.algo.actor import Actor
from apex_dqn.algo.evaluator import Evaluator
from apex_dqn.config import ActorsConfig, AlgoConfig, EnvConfig, NetworkConfig
a = Actor(actor_index=0, env=EnvConfig(), network=NetworkConfig(), algo=AlgoConfig(),
          actors=ActorsConfig(num_actors=1, envs_per_actor=4, push_every=16),
          num_actions=2, obs_shape=(4,), seed=0)
batches, _ = a.run_steps(50)
assert batches and (batches[0].priority_B > 0).any()
e = Evaluator(env=EnvConfig(), network=NetworkConfig(), obs_shape=(4,), num_actions=2,
              episodes=2, seed=0)
print("torch" in sys.modules)
"""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "False"


def test_a_nature_torso_acts_through_torch_with_the_same_interface():
    from apex_dqn.algo.acting_q import TorchQ, build_acting_q

    cfg = NetworkConfig(torso="nature")
    q = build_acting_q(cfg, obs_shape=(4, 84, 84), num_actions=3, seed=0)
    assert isinstance(q, TorchQ)
    torch.manual_seed(1)
    net = build_q_network(cfg, obs_shape=(4, 84, 84), num_actions=3)
    q.set_weights(get_weights(net))
    obs = np.random.default_rng(0).integers(0, 255, (5, 4, 84, 84), dtype=np.uint8)
    with torch.no_grad():
        expected = net(torch.from_numpy(obs)).numpy()
    # Any batch size, one module.
    np.testing.assert_allclose(q.q_values(obs[:2]), expected[:2], rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(q.q_values(obs), expected, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(q.q_values(obs[3:4]), expected[3:4], rtol=1e-5, atol=1e-6)
    # New weights reach what acting runs.
    torch.manual_seed(2)
    other = build_q_network(cfg, obs_shape=(4, 84, 84), num_actions=3)
    q.set_weights(get_weights(other))
    with torch.no_grad():
        expected = other(torch.from_numpy(obs)).numpy()
    np.testing.assert_allclose(q.q_values(obs), expected, rtol=1e-5, atol=1e-6)


def test_bf16_acting_tracks_float32_for_the_nature_cnn():
    from apex_dqn.algo.acting_q import TorchQ
    from apex_dqn.config import NetworkConfig

    net = NetworkConfig(torso="nature")
    fp32 = TorchQ(net, obs_shape=(4, 84, 84), num_actions=6, seed=3)
    bf16 = TorchQ(net, obs_shape=(4, 84, 84), num_actions=6, seed=3, bf16=True)
    obs = np.random.default_rng(0).integers(0, 255, (16, 4, 84, 84), dtype=np.uint8)
    q32, q16 = fp32.q_values(obs), bf16.q_values(obs)
    assert q16.dtype == np.float32 and q16.shape == (16, 6)
    # bf16 keeps about 3 significant digits; the values differ, but only a little.
    assert not np.array_equal(q16, q32)
    np.testing.assert_allclose(q16, q32, atol=0.02 * np.abs(q32).max() + 1e-3)


def test_bf16_acting_keeps_bf16_weights_so_autocast_casts_no_weight_per_pass():
    from apex_dqn.algo.acting_q import TorchQ

    net = NetworkConfig(torso="minatar")
    q = TorchQ(net, obs_shape=(4, 10, 10), num_actions=3, seed=0, bf16=True)
    assert {p.dtype for p in q._net.parameters()} == {torch.bfloat16}
    plain = TorchQ(net, obs_shape=(4, 10, 10), num_actions=3, seed=0)
    assert {p.dtype for p in plain._net.parameters()} == {torch.float32}


def _minatar(seed: int) -> torch.nn.Module:
    torch.manual_seed(seed)
    return build_q_network(NetworkConfig(torso="minatar"), obs_shape=(4, 10, 10), num_actions=3)


@pytest.mark.parametrize("bf16", [False, True])
def test_each_weight_change_reaches_acting(bf16):
    """Actors get new weights every few seconds, copied into the acting module in place: no
    copy made earlier (a trace, a compiled graph, a cached bf16 weight) may keep old ones."""
    from apex_dqn.algo.acting_q import TorchQ

    cfg = NetworkConfig(torso="minatar")
    q = TorchQ(cfg, obs_shape=(4, 10, 10), num_actions=3, seed=0, bf16=bf16)
    obs = np.random.default_rng(0).integers(0, 2, (8, 4, 10, 10), dtype=np.uint8)
    previous = q.q_values(obs)
    for seed in range(1, 4):
        net = _minatar(seed).eval()
        q.set_weights(get_weights(net))
        with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
            expected = net(torch.from_numpy(obs)).float().numpy()
        got = q.q_values(obs)
        assert not np.allclose(got, previous), f"weights of seed {seed} did not reach acting"
        tol = 0.02 * np.abs(expected).max() + 1e-3 if bf16 else 1e-6
        np.testing.assert_allclose(got, expected, rtol=1e-5, atol=tol)
        previous = got


def test_acting_returns_the_eager_modules_q_values_from_the_seeded_init():
    from apex_dqn.algo.acting_q import TorchQ

    cfg = NetworkConfig(torso="minatar")
    state = torch.random.get_rng_state()
    q = TorchQ(cfg, obs_shape=(4, 10, 10), num_actions=3, seed=5)
    assert torch.equal(torch.random.get_rng_state(), state), "the global RNG was used"
    obs = np.random.default_rng(1).integers(0, 2, (16, 4, 10, 10), dtype=np.uint8)
    with torch.no_grad():
        expected = _minatar(5)(torch.from_numpy(obs)).numpy()
    got = q.q_values(obs)
    assert got.dtype == np.float32 and got.shape == (16, 3)
    np.testing.assert_array_equal(got, expected)
    other = TorchQ(cfg, obs_shape=(4, 10, 10), num_actions=3, seed=6)
    assert not np.allclose(other.q_values(obs), got)


def test_acting_loads_neither_torchscript_nor_dynamo():
    """TorchScript is deprecated; torch.compile would cost its import of torch._dynamo (1.5-2 s
    of CPU) in every actor process, and was no faster (benchmarks/acting_bench.py)."""
    code = """
import sys
import numpy as np
import torch
from apex_dqn.algo.acting_q import build_acting_q
from apex_dqn.algo.networks import get_weights
from apex_dqn.config import NetworkConfig

def refuse(*args, **kwargs):
    raise AssertionError("TorchScript used")

torch.jit.trace = torch.jit.script = torch.jit.trace_module = refuse
q = build_acting_q(NetworkConfig(torso="minatar"), obs_shape=(4, 10, 10), num_actions=3, seed=0)
q.set_weights(get_weights(q._net))
q.q_values(np.zeros((4, 4, 10, 10), np.uint8))
print("torch._dynamo" in sys.modules)
"""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "False", "acting imported torch._dynamo"
