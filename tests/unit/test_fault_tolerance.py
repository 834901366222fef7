"""Checkpoint files, replay snapshots, run-state round trips, env errors and stop signals."""

from __future__ import annotations

import dataclasses
import os
import signal
import sys

import numpy as np
import pytest

from apex_dqn.algo.actor import Actor, EnvFailure
from apex_dqn.algo.learner import Learner
from apex_dqn.algo.networks import weights_digest
from apex_dqn.config import ActorsConfig, AlgoConfig, Config, EnvConfig, NetworkConfig
from apex_dqn.core.types import TransitionBatch
from apex_dqn.files import checkpoint as ckpt
from apex_dqn.files.atomic import write_bytes_atomic
from apex_dqn.replay.prioritized import PrioritizedReplay
from apex_dqn.replay.snapshot import load_snapshot, save_snapshot
from apex_dqn.roles.parameter_server import ParameterServer
from apex_dqn.run.signals import StopSignals
from apex_dqn.run.state import RunTracker


def _state(tag: int) -> bytes:
    return ckpt.state_to_bytes({"format": ckpt.FORMAT, "tag": tag})


def test_checkpoint_manager_rotates_and_keeps_the_best(tmp_path):
    manager = ckpt.CheckpointManager(tmp_path, keep_last=2, save_best=True)
    for steps, ret in [(10, 50.0), (20, 200.0), (30, 120.0), (40, None)]:
        manager.save(_state(steps), learner_steps=steps, eval_return=ret)
    names = [p.name for p in manager.periodic_paths()]
    assert names == ["step-000000030.pt", "step-000000040.pt"]
    assert ckpt.load_checkpoint(tmp_path / ckpt.LATEST)["tag"] == 40
    assert ckpt.load_checkpoint(tmp_path / ckpt.BEST)["tag"] == 20
    assert not [p for p in tmp_path.rglob(".*tmp*")], "temporary files left behind"


def test_a_failed_write_leaves_the_previous_checkpoint_intact(tmp_path, monkeypatch):
    path = tmp_path / "checkpoint.pt"
    write_bytes_atomic(path, _state(1))

    def broken_fsync(fd: int) -> None:
        raise OSError("disk full")

    monkeypatch.setattr(os, "fsync", broken_fsync)
    with pytest.raises(OSError, match="disk full"):
        write_bytes_atomic(path, _state(2))
    monkeypatch.undo()
    assert ckpt.load_checkpoint(path)["tag"] == 1
    assert [p.name for p in tmp_path.iterdir()] == ["checkpoint.pt"]


def test_checkpoint_errors_name_the_problem(tmp_path):
    with pytest.raises(ckpt.CheckpointError, match="no such directory"):
        ckpt.run_checkpoint_path(tmp_path / "nope")
    with pytest.raises(ckpt.CheckpointError, match="not an apex-dqn run directory"):
        ckpt.run_checkpoint_path(tmp_path)
    with pytest.raises(ckpt.CheckpointError, match="not a readable apex-dqn checkpoint"):
        ckpt.state_from_bytes(b"garbage")
    other = ckpt.state_to_bytes({"format": "someone-else/3"})
    with pytest.raises(ckpt.CheckpointError, match="not an apex-dqn checkpoint"):
        ckpt.state_from_bytes(other)


def _saved_state() -> dict:
    return {
        "format": ckpt.FORMAT,
        "config": dataclasses.asdict(Config()),
        "env": {"obs_shape": (4,), "obs_dtype": "float32", "num_actions": 2},
    }


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"env_id": "Acrobot-v1"}, "env.id=CartPole-v1, not env.id=Acrobot-v1"),
        ({"obs_shape": (6,)}, "observations/actions"),
        ({"num_actions": 3}, "observations/actions"),
        ({"network": {"torso": "mlp", "hidden_sizes": [32], "dueling": True}}, "hidden_sizes"),
    ],
)
def test_incompatible_checkpoints_are_refused(kwargs, message):
    args = {
        "env_id": "CartPole-v1",
        "obs_shape": (4,),
        "num_actions": 2,
        "network": dataclasses.asdict(NetworkConfig()),
        **kwargs,
    }
    with pytest.raises(ckpt.CheckpointError, match=message):
        ckpt.check_compatible(_saved_state(), **args)
    ckpt.check_compatible(  # the matching one passes
        _saved_state(),
        env_id="CartPole-v1",
        obs_shape=(4,),
        num_actions=2,
        network=dataclasses.asdict(NetworkConfig()),
    )


def _batch(n: int, start: int) -> TransitionBatch:
    rng = np.random.default_rng(start)
    return TransitionBatch(
        obs_B=rng.normal(size=(n, 4)).astype(np.float32),
        action_B=rng.integers(0, 2, n),
        return_B=rng.normal(size=n).astype(np.float32),
        discount_B=np.full(n, 0.97, np.float32),
        next_obs_B=rng.normal(size=(n, 4)).astype(np.float32),
        done_B=np.zeros(n, bool),
        priority_B=rng.uniform(0.1, 2.0, n).astype(np.float32),
    )


def test_replay_snapshot_round_trip_continues_identically(tmp_path):
    kwargs = {"capacity": 300, "obs_shape": (4,), "alpha": 0.6, "priority_eps": 1e-6, "seed": 3}
    replay = PrioritizedReplay(**kwargs)
    for k in range(5):
        replay.add(_batch(100, k))  # wraps around: FIFO eviction state is part of it
    path = save_snapshot(tmp_path / "replay" / "shard0.npz", replay.state_dict())
    with np.load(path, allow_pickle=False) as data:  # data only: loads without pickle
        assert "storage/obs_B" in data.files
    restored = PrioritizedReplay(**kwargs)
    restored.load_state_dict(load_snapshot(path))
    assert len(restored) == len(replay) == 300
    a, b = replay.sample(32, 0.5), restored.sample(32, 0.5)
    np.testing.assert_array_equal(a.ids_B, b.ids_B)
    np.testing.assert_allclose(a.weights_B, b.weights_B)
    np.testing.assert_array_equal(a.batch.obs_B, b.batch.obs_B)


def test_tracker_state_round_trip_continues_counters_curve_and_clock():
    t = RunTracker(env_id="CartPole-v1", seed=0, target_return=475.0)
    t.env_steps, t.learner_steps, t.actor_restarts = 5_000, 300, 2
    t.add_eval(100.0)
    t.env_steps = 9_000
    t.add_eval(480.0)
    state = t.state_dict()
    resumed = RunTracker(env_id="CartPole-v1", seed=0, target_return=475.0)
    resumed.load_state_dict(state)
    assert (resumed.env_steps, resumed.learner_steps, resumed.actor_restarts) == (9_000, 300, 2)
    assert [e.mean_return for e in resumed.evals] == [100.0, 480.0]
    assert resumed.time_to_solve_s == t.time_to_solve_s
    assert resumed.wall_s() >= state["wall_s"]
    assert resumed.summary()["solved"] is True


def test_learner_state_round_trip_restores_identical_weights_and_steps():
    kwargs = {
        "obs_shape": (4,),
        "num_actions": 2,
        "network": NetworkConfig(hidden_sizes=[16]),
        "algo": AlgoConfig(),
        "learner": Config().learner,
        "replay": Config().replay,
        "seed": 0,
    }
    learner = Learner(**kwargs)
    batch, w = _batch(64, 0), np.ones(64, np.float32)
    for _ in range(3):
        learner.step(learner.stage(batch, w))
    data = ckpt.state_to_bytes({"format": ckpt.FORMAT, "learner": learner.state_dict()})
    other = Learner(**{**kwargs, "seed": 1})
    assert weights_digest(other.get_weights()) != weights_digest(learner.get_weights())
    other.load_state_dict(ckpt.state_from_bytes(data)["learner"])
    assert weights_digest(other.get_weights()) == weights_digest(learner.get_weights())
    assert other.learner_steps == 3
    # Optimizer state came along too: the next update is the same in both.
    m1, _ = learner.step(learner.stage(batch, w))
    m2, _ = other.step(other.stage(batch, w))
    assert m1.loss == pytest.approx(m2.loss) and m1.grad_norm == pytest.approx(m2.grad_norm)
    assert weights_digest(other.get_weights()) == weights_digest(learner.get_weights())


def _actor(env_id: str) -> Actor:
    return Actor(
        actor_index=0,
        env=EnvConfig(id=env_id),
        network=NetworkConfig(hidden_sizes=[16]),
        algo=AlgoConfig(),
        actors=ActorsConfig(num_actors=1, envs_per_actor=2, push_every=8, max_env_errors=3),
        num_actions=2,
        obs_shape=(4,),
        seed=0,
    )


def test_an_env_that_raises_now_and_then_is_reset_and_counted():
    import apex_dqn.envs.chaos  # noqa: F401  registers the chaos environments

    actor = _actor("apex_dqn.envs.chaos:FlakyCartPole-v1")
    report_errors, transitions = 0, 0
    for _ in range(4):
        _, report = actor.run_steps(1_000)
        report_errors += report.env_errors
        transitions += report.transitions
    assert actor.env_errors == report_errors >= 2  # each of 2 envs fails every 1,500 steps
    assert transitions > 7_000  # acting went on


def test_an_env_that_keeps_raising_stops_with_a_clear_error():
    actor = _actor("apex_dqn.envs.chaos:BrokenCartPole-v1")
    with pytest.raises(EnvFailure, match=r"BrokenCartPole-v1.*3 times in a row.*max_env_errors"):
        actor.run_steps(10)


def test_parameter_server_forced_publish_reaches_holders_of_newer_weights():
    ps = ParameterServer()
    ps.publish("v100", 100)
    ps.publish("v40-restored", 40)  # a stale publish is ignored
    assert ps.pull_if_newer(-1) == ("v100", 100)
    ps.publish("v40-restored", 40, force=True)  # a restore is not
    assert ps.pull_if_newer(100) == ("v40-restored", 40)
    assert ps.pull_if_newer(40) == (None, 40)


def test_stop_signals_turn_sigterm_into_a_request_and_restore_handlers():
    before = signal.getsignal(signal.SIGTERM)
    with StopSignals() as signals:
        os.kill(os.getpid(), signal.SIGTERM)
        assert signals.received == signal.SIGTERM and signals.name == "SIGTERM"
    assert signal.getsignal(signal.SIGTERM) == before


def test_stop_signals_take_sigterm_back_from_a_runtime_that_replaced_it():
    """ray.init sets SIGTERM to sys.exit while the run's StopSignals are active; the driver
    reclaims it, so SIGTERM still asks the run to stop (with its checkpoint and outputs)."""
    before = signal.getsignal(signal.SIGTERM)

    def runtime_handler(signum, frame):  # what ray.init installs
        sys.exit(signum)

    with StopSignals() as signals:
        signal.signal(signal.SIGTERM, runtime_handler)
        signals.reclaim()
        os.kill(os.getpid(), signal.SIGTERM)
        assert signals.received == signal.SIGTERM
    assert signal.getsignal(signal.SIGTERM) == before


def test_resume_overrides_apply_on_top_of_the_saved_config():
    from apex_dqn.cli.train import resumed_config
    from apex_dqn.config import ConfigError

    saved = dataclasses.asdict(Config(seed=7))
    cfg = resumed_config(saved, ["train.max_env_steps=1234", "resume=/x"])
    assert cfg.seed == 7 and cfg.train.max_env_steps == 1234
    with pytest.raises(ConfigError, match=r"learner\.lr"):
        resumed_config(saved, ["learner.lr=-1"])
