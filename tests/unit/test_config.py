"""Config validation: every bad value fails before anything starts, naming key and range."""

from __future__ import annotations

import pytest
from hydra.errors import ConfigCompositionException

from apex_dqn.config import Config, ConfigError

BAD_VALUES = [
    ("actors.num_actors=0", "actors.num_actors", "[1, 4096]"),
    ("actors.envs_per_actor=-3", "actors.envs_per_actor", "[1, 4096]"),
    ("actors.eps_base=1.5", "actors.eps_base", "[0, 1]"),
    ("actors.num_cpus=-0.5", "actors.num_cpus", "[0, 64]"),
    ("algo.gamma=0", "algo.gamma", "(0, 1]"),
    ("algo.gamma=1.01", "algo.gamma", "(0, 1]"),
    ("algo.n_step=0", "algo.n_step", "[1, 100]"),
    ("learner.lr=0", "learner.lr", "(0, 1]"),
    ("learner.batch_size=0", "learner.batch_size", "[1, 1048576]"),
    ("learner.device=tpu", "learner.device", "auto, cpu, cuda"),
    ("learner.prefetch=0", "learner.prefetch", "[1, 64]"),
    ("learner.grad_clip=-1", "learner.grad_clip", "[0, inf]"),
    ("learner.num_learners=0", "learner.num_learners", "[1, 64]"),
    ("learner.dist_backend=mpi", "learner.dist_backend", "auto, gloo, nccl"),
    ("replay.alpha=2", "replay.alpha", "[0, 1]"),
    ("replay.num_shards=0", "replay.num_shards", "[1, 1024]"),
    ("replay.priority_eps=0", "replay.priority_eps", "(0, inf]"),
    ("eval.episodes=0", "eval.episodes", "[1, 10000]"),
    ("train.max_seconds=0", "train.max_seconds", "(0, inf]"),
    ("train.max_env_steps=0", "train.max_env_steps", ">= 1"),
    ("network.torso=resnet", "network.torso", "mlp, nature, minatar"),
    ("learner.target_update_tau=1.5", "learner.target_update_tau", "[0, 1]"),
    ("learner.amp=sometimes", "learner.amp", "true, false, auto"),
    ("learner.channels_last=nhwc", "learner.channels_last", "true, false, auto"),
    ("learner.num_threads=0", "learner.num_threads", "auto or an integer in [1, 256]"),
    ("learner.num_threads=many", "learner.num_threads", "auto or an integer in [1, 256]"),
    ("network.hidden_sizes=[64,0]", "network.hidden_sizes[1]", "[1, 65536]"),
    ("runtime=spark", "runtime", "ray, local"),
    ("seed=-1", "seed", "[0, 2147483647]"),
    ("ray.num_cpus=0", "ray.num_cpus", ">= 1"),
    ("ray.address=headnode", "ray.address", "'auto', 'local', host:port or ray://host:port"),
    ("ray.address=head:99999", "ray.address", "host:port"),
]


@pytest.mark.parametrize(("override", "key", "allowed"), BAD_VALUES)
def test_bad_value_names_key_and_range(compose_config, override, key, allowed):
    with pytest.raises(ConfigError) as err:
        compose_config(override)
    message = str(err.value)
    assert message.startswith(key), message
    assert allowed in message, message


CROSS_FIELD = [
    (("replay.capacity=1000", "replay.num_shards=16"), "replay.capacity / replay.num_shards"),
    (("replay.min_size_to_learn=10",), "replay.min_size_to_learn must be >= learner.batch_size"),
    (("replay.capacity=500", "replay.min_size_to_learn=600"), "must be <= replay.capacity"),
    (("replay.beta_start=0.9", "replay.beta_end=0.5"), "replay.beta_end must be >="),
    (("learner.num_learners=2", "runtime=local"), "learner.num_learners=2 needs runtime=ray"),
    (("learner.dist_backend=nccl", "learner.device=cpu"), "learner.dist_backend=nccl needs a CUDA"),
    (("network.torso=minatar",), "network.torso=minatar needs a MinAtar game"),
    (("env.id=MinAtar/Breakout-v1",), "use network.torso=minatar"),
    (("network.layer_norm=true",), "network.layer_norm=true needs network.torso nature or minatar"),
]


@pytest.mark.parametrize(("overrides", "fragment"), CROSS_FIELD)
def test_cross_field_rules(compose_config, overrides, fragment):
    with pytest.raises(ConfigError, match=fragment.replace("(", r"\(").replace("/", "/")):
        compose_config(*overrides)


@pytest.mark.parametrize("override", ["actors.num_actors=abc", "nope=1", "actors.bogus=1"])
def test_type_errors_and_unknown_keys_fail_at_composition(compose_config, override):
    with pytest.raises(ConfigCompositionException):
        compose_config(override)


def test_defaults_compose_to_the_dataclass(compose_config):
    cfg = compose_config()
    assert isinstance(cfg, Config)
    assert cfg.env.id == "CartPole-v1"
    assert cfg.algo.n_step == 5 and cfg.replay.alpha == 0.6 and cfg.replay.beta_start == 0.4
    assert cfg.actors.eps_base == 0.4 and cfg.actors.eps_alpha == 7.0


def test_override_reaches_the_dataclass(compose_config):
    cfg = compose_config("env.id=Acrobot-v1", "actors.num_actors=4", "seed=3")
    assert (cfg.env.id, cfg.actors.num_actors, cfg.seed) == ("Acrobot-v1", 4, 3)


def test_plain_dataclass_validates_without_hydra():
    with pytest.raises(ConfigError, match=r"algo\.n_step"):
        from apex_dqn.config import AlgoConfig

        AlgoConfig(n_step=0)


def test_atari_group_carries_atari_learner_defaults(compose_config):
    """env=atari (and experiment=pong on top) no longer keeps CartPole's learner."""
    for overrides in (("env=atari",), ("experiment=pong",)):
        cfg = compose_config(*overrides)
        assert cfg.learner.lr == 1e-4 and cfg.learner.target_update_period == 500
        assert cfg.actors.min_replay_ratio == 2.0 and cfg.replay.capacity == 100_000
        assert cfg.train.max_seconds == 10_800 and cfg.network.torso == "nature"
        # The fastest measured stepper, and bf16 where the CPU has it.
        assert (cfg.actors.vector_mode, cfg.actors.pipeline) == ("ale", True)
        assert cfg.actors.amp == "auto" and cfg.learner.amp == "auto"
    pong = compose_config("experiment=pong")
    assert pong.train.target_return == 18.0
    # The peers' Pong figures use no sticky actions; plain env=atari keeps ALE v5's.
    assert pong.env.atari.repeat_action_probability == 0.0
    assert compose_config("env=atari").env.atari.repeat_action_probability == 0.25


@pytest.mark.parametrize("section", ["learner", "actors"])
def test_amp_takes_booleans_and_auto_only(section):
    from apex_dqn.config import ActorsConfig, LearnerConfig

    cls = {"learner": LearnerConfig, "actors": ActorsConfig}[section]
    for good in (True, False, "auto"):
        cls(amp=good)
    for bad in (1, 0.0, "yes"):
        with pytest.raises(ConfigError, match=rf"{section}\.amp must be one of true, false, auto"):
            cls(amp=bad)


def test_minatar_group_composes_for_every_game(compose_config):
    for game in ("Asterix", "Breakout", "Freeway", "Seaquest", "SpaceInvaders"):
        cfg = compose_config("env=minatar", f"env.id=MinAtar/{game}-v1")
        assert cfg.network.torso == "minatar" and cfg.env.atari is None
        assert cfg.eval.epsilon == 0.0
