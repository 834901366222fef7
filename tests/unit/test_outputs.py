"""Run bookkeeping and files: tracker, summary, metrics.jsonl, checkpoints, plot, evaluator."""

from __future__ import annotations

import json
import time
from dataclasses import asdict

import numpy as np
import pytest
import torch

from apex_dqn.algo.evaluator import Evaluator
from apex_dqn.algo.networks import build_q_network, get_weights
from apex_dqn.config import Config, EnvConfig, LoggingConfig, NetworkConfig
from apex_dqn.core.metrics import (
    ENV_STEPS,
    EVAL_RETURN,
    SUMMARY_KEYS,
    JsonlWriter,
    read_jsonl,
    status_line,
)
from apex_dqn.core.reports import ActorReport, EvalResult, LearnerReport
from apex_dqn.core.types import ReplayTotals, ShardSize
from apex_dqn.envs.factory import inspect_env
from apex_dqn.files.checkpoint import CheckpointError, load_checkpoint, save_checkpoint
from apex_dqn.files.plotting import plot_learning_curve
from apex_dqn.run.outputs import RunOutputs
from apex_dqn.run.state import RunTracker
from tests.unit.png_helpers import TAB_BLUE, TAB_GREEN, pixels_of


def test_tracker_solves_at_first_eval_reaching_target():
    t = RunTracker(env_id="CartPole-v1", seed=3, target_return=475.0, process_start=time.time())
    t.env_steps = 1000
    assert not t.add_eval(100.0)
    t.env_steps = 5000
    assert t.add_eval(480.0)
    t.env_steps = 9000
    t.add_eval(500.0)
    s = t.summary()
    assert set(SUMMARY_KEYS) <= set(s)
    assert s["solved"] and s["env_steps_at_solve"] == 5000
    assert s["best_eval_return"] == 500.0 and s["final_eval_return"] == 500.0
    assert 0 <= s["time_to_solve_s"] < 5
    assert s["seed"] == 3 and s["env_id"] == "CartPole-v1"


def test_unsolved_summary_has_nulls_not_missing_keys():
    s = RunTracker(env_id="X", seed=0, target_return=None).summary()
    assert set(SUMMARY_KEYS) <= set(s)
    assert s["solved"] is False and s["time_to_solve_s"] is None
    assert s["best_eval_return"] is None


def test_record_rates_and_status_line():
    t = RunTracker(env_id="X", seed=0, target_return=1.0)
    t.train_start -= 2.0
    t.env_steps, t.learner_steps = 2000, 100
    t.replay = ReplayTotals(
        size=2000,
        capacity=10000,
        added=2000,
        sampled=6400,
        bytes=3 * 2**20,
        shards=2,
        per_shard=[
            ShardSize(size=1500, capacity=5000, bytes=2 * 2**20),
            ShardSize(size=500, capacity=5000, bytes=2**20),
            None,
        ],
    )
    t.weights_version, t.actor_versions = 100, {0: 90, 1: 80}
    rec = t.record()
    assert rec[ENV_STEPS] == 2000 and 800 < rec["perf/env_steps_per_s"] < 1100
    assert rec["replay/replay_ratio"] == pytest.approx(3.2)
    assert rec["actors/policy_lag"] == pytest.approx(15.0)
    assert rec["replay/bytes"] == 3 * 2**20 and rec["replay/shards_up"] == 2
    line = status_line(rec)
    for fragment in ("env", "2,000", "learner", "replay", "(3 MiB)", "ratio", "eval", "lag"):
        assert fragment in line
    # Every shard's size, capacity and bytes, in the record and on the line.
    assert rec["replay/shard0/size"] == 1500 and rec["replay/shard1/bytes"] == 2**20
    assert rec["replay/shard2/size"] is None  # down
    assert "[s0 1,500/5,000 2 MiB; s1 500/5,000 1 MiB; s2 down]" in line


def test_jsonl_writer_appends_one_record_per_line(tmp_path):
    w = JsonlWriter(tmp_path / "m.jsonl")
    w.write({"a": 1})
    w.write({"a": 2})
    w.close()
    lines = (tmp_path / "m.jsonl").read_text().splitlines()
    assert [json.loads(x)["a"] for x in lines] == [1, 2]


def test_a_writer_reopening_after_a_kill_mid_record_drops_the_cut_record(tmp_path):
    path = tmp_path / "m.jsonl"
    path.write_text('{"a": 1}\n{"a": 2, "b": [1')  # killed halfway through record 2
    w = JsonlWriter(path)  # a resumed run appends
    w.write({"a": 3})
    w.close()
    assert read_jsonl(path) == [{"a": 1}, {"a": 3}]


def test_read_jsonl_leaves_out_a_record_still_being_appended(tmp_path):
    path = tmp_path / "m.jsonl"
    w = JsonlWriter(path)
    w.write({"a": 1})
    w.write({"a": 2})
    w.close()
    assert read_jsonl(path) == [{"a": 1}, {"a": 2}]
    with path.open("a") as f:  # a long record caught halfway through its writes
        f.write('{"a": 3, "b": [1, 2')
    assert read_jsonl(path) == [{"a": 1}, {"a": 2}]
    path.write_text('{"a": 1}\n{"a": 2}')  # a file written by hand, its last line unended
    assert read_jsonl(path) == [{"a": 1}, {"a": 2}]
    path.write_text('{"a": 1}\n{"a": broken}\n')  # a complete line that is not JSON is an error
    with pytest.raises(json.JSONDecodeError):
        read_jsonl(path)


def test_checkpoint_round_trip_and_atomicity(tmp_path):
    path = tmp_path / "ckpt.pt"
    state = {"format": "apex-dqn/1", "learner": {"w": torch.arange(3.0)}, "n": 5}
    save_checkpoint(path, state)
    loaded = load_checkpoint(path)
    assert torch.equal(loaded["learner"]["w"], torch.arange(3.0)) and loaded["n"] == 5
    assert [p.name for p in tmp_path.iterdir()] == ["ckpt.pt"], "no temporary file left behind"


def test_checkpoint_errors_are_clear(tmp_path):
    with pytest.raises(CheckpointError, match="does not exist"):
        load_checkpoint(tmp_path / "missing.pt")
    bad = tmp_path / "bad.pt"
    bad.write_bytes(b"not a checkpoint")
    with pytest.raises(CheckpointError, match="not a readable apex-dqn checkpoint"):
        load_checkpoint(bad)
    torch.save({"x": 1}, tmp_path / "other.pt")
    with pytest.raises(CheckpointError, match="format"):
        load_checkpoint(tmp_path / "other.pt")


def test_learning_curve_png(tmp_path):
    path = plot_learning_curve(
        env_steps=[0, 100, 200],
        wall_s=[0.0, 1.0, 2.0],
        returns=[10.0, 50.0, 200.0],
        path=tmp_path / "curve.png",
        title="t",
        target=195.0,
    )
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    # Both panels (against env steps, against seconds) draw the curve and the target line.
    assert pixels_of(path, TAB_BLUE) > 400 and pixels_of(path, TAB_GREEN) > 400
    no_target = plot_learning_curve(
        env_steps=[0, 100, 200],
        wall_s=[0.0, 1.0, 2.0],
        returns=[10.0, 50.0, 200.0],
        path=tmp_path / "curve_no_target.png",
        title="t",
        target=None,
    )
    assert pixels_of(no_target, TAB_GREEN) < 20  # no target: no green line


def test_run_outputs_write_every_file(tmp_path):
    cfg = Config(output_dir=str(tmp_path), logging=LoggingConfig(console=False))
    t = RunTracker(env_id=cfg.env.id, seed=0, target_return=475.0)
    out = RunOutputs(tmp_path, cfg, t)
    t.env_steps = 10
    t.add_eval(20.0)
    out.report()
    summary = out.finish()
    names = {p.name for p in tmp_path.iterdir()}
    assert {"config.yaml", "metrics.jsonl", "summary.json", "learning_curve.png"} <= names
    assert json.loads((tmp_path / "summary.json").read_text()) == summary
    rec = json.loads((tmp_path / "metrics.jsonl").read_text().splitlines()[0])
    assert rec[EVAL_RETURN] == 20.0


def test_evaluator_runs_each_episode_once_greedily():
    env = EnvConfig(id="CartPole-v1", max_episode_steps=50)
    info = inspect_env(env)
    net_cfg = NetworkConfig(hidden_sizes=[16])
    ev = Evaluator(
        env=env,
        network=net_cfg,
        obs_shape=info.obs_shape,
        num_actions=info.num_actions,
        episodes=4,
        seed=0,
    )
    weights = get_weights(build_q_network(net_cfg, obs_shape=(4,), num_actions=2))
    r = ev.evaluate(weights, version=3)
    assert r.episodes == 4 and r.weights_version == 3
    assert 1 <= r.min_return <= r.mean_return <= r.max_return <= 50
    # CartPole returns equal lengths (+1 per step).
    assert r.mean_length == pytest.approx(r.mean_return)
    # Same weights, same seed sequence position -> same result on a fresh evaluator.
    ev2 = Evaluator(env=env, network=net_cfg, obs_shape=(4,), num_actions=2, episodes=4, seed=0)
    assert ev2.evaluate(weights, 3).mean_return == r.mean_return
    assert np.isfinite(r.mean_return)


def test_record_has_per_actor_epsilon_bucket_timer_and_eval_metrics():
    from apex_dqn.core.metrics import catalogue, eps_bucket, in_catalogue

    t = RunTracker(env_id="X", seed=0, target_return=None, batch_size=64)
    t.train_start -= 10.0
    t.record()  # the previous record: rates below are over the next interval
    t._previous["added"] = 0.0
    for index, eps in ((0, 0.4), (1, 0.004)):
        t.ingest_actor(
            index,
            ActorReport(
                env_steps=1000 * (index + 1),
                episode_returns=[10.0 * (index + 1)],
                episode_lengths=[20 * (index + 1)],
                epsilon=eps,
                pid=100 + index,
                seconds={"acting": 0.5, "pushing": 0.1, "weight_sync": 0.0},
                weights_age_s=2.0 + index,
            ),
        )
    t.add_eval(5.0, {"std_return": 1.5, "min_return": 3.0, "max_return": 7.0, "mean_length": 9})
    t.ingest_learner(
        LearnerReport(
            updates=100,
            batches_learned=100,
            learner_steps=100,
            weights_version=100,
            skipped_updates=0,
            replay=ReplayTotals(added=3000, sampled=6400),
            metrics={},
            shard_failures=0,
            shard_restarts=0,
            shards_down=0,
            seconds={"learning": 0.8, "sampling": 0.1},
        )
    )
    t._last_report = (t._last_report[0] - 1.0, 0, 0)  # exactly 1 s more since the last record
    rec = t.record()
    assert rec["actors/actor1/env_steps_per_s"] == pytest.approx(2000, rel=0.01)
    assert rec["actors/actor0/episode_return"] == 10.0 and rec["actors/actor1/episode_length"] == 40
    assert rec["charts/episode_return_eps_1e-1"] == 10.0
    assert rec["charts/episode_return_eps_1e-3"] == 20.0 and eps_bucket(0.004) == "1e-3"
    assert rec["actors/weight_sync_age_s"] == pytest.approx(2.5)
    # Actor phases are averaged over the actors, as shares of the interval.
    assert rec["timers/actors_acting"] == pytest.approx(0.5, rel=0.01)
    assert rec["timers/learner_learning"] == pytest.approx(0.8, rel=0.01)
    assert rec["perf/learner_samples_per_s"] == pytest.approx(100 * 64, rel=0.01)
    assert rec["perf/replay_inserts_per_s"] == pytest.approx(3000, rel=0.01)
    assert rec["eval/std_return"] == 1.5 and rec["eval/max_return"] == 7.0
    # Every key is in the one catalogue; nothing outside it is.
    assert all(in_catalogue(k) for k in rec), [k for k in rec if not in_catalogue(k)]
    assert not in_catalogue("losses/unknown") and len(catalogue()) > 40


def test_a_solve_needs_its_confirmation_and_both_are_reported():
    t = RunTracker(env_id="CartPole-v1", seed=0, target_return=475.0)
    t.env_steps = 1000
    assert not t.add_eval(480.0, {"confirm_return": 300.0})  # lucky episodes: not solved
    t.env_steps = 2000
    assert t.add_eval(490.0, {"confirm_return": 478.0})
    s = t.summary()
    assert s["solved"] and s["env_steps_at_solve"] == 2000
    assert (s["solve_eval_return"], s["confirm_eval_return"]) == (490.0, 478.0)
    assert [e["mean_return"] for e in s["evals"]] == [480.0, 490.0]
    assert all(e["process_s"] >= e["wall_s"] >= 0 for e in s["evals"])


def test_every_evaluation_and_its_confirmation_reach_one_metrics_record_with_their_returns():
    t = RunTracker(env_id="CartPole-v1", seed=0, target_return=475.0)
    t.env_steps = 1000

    def result(returns: list[float], **confirm) -> dict:  # as the driver gets it
        mean = sum(returns) / len(returns)
        stats = {"std_return": 0.0, "min_return": min(returns), "max_return": max(returns)}
        return asdict(
            EvalResult(mean, **stats, mean_length=9.0, weights_version=3, episodes=2,
                       returns=returns, **confirm)
        )  # fmt: skip

    t.add_eval(20.0, result([10.0, 30.0]))
    t.env_steps = 2000
    t.add_eval(490.0, result([480.0, 500.0], confirm_return=478.0, confirm_returns=[476.0, 480.0]))
    first = t.record()
    # Both evaluations, though only one record followed them, each once and whole.
    assert [e["env_steps"] for e in first["eval/new"]] == [1000, 2000]
    assert [e["index"] for e in first["eval/new"]] == [0, 1]
    assert first["eval/new"][0]["returns"] == [10.0, 30.0]
    assert first["eval/new"][0]["weights_version"] == 3
    assert not {"confirm_return", "confirm_returns"} & set(first["eval/new"][0])
    solve = first["eval/new"][1]
    assert (solve["mean_return"], solve["returns"]) == (490.0, [480.0, 500.0])
    assert (solve["confirm_return"], solve["confirm_returns"]) == (478.0, [476.0, 480.0])
    assert first["eval/mean_return"] == 490.0
    assert "eval/new" not in t.record()  # written once


def test_evaluator_confirms_a_target_reaching_evaluation_on_new_episodes():
    env = EnvConfig(id="CartPole-v1", max_episode_steps=50)
    net_cfg = NetworkConfig(hidden_sizes=[16])
    weights = get_weights(build_q_network(net_cfg, obs_shape=(4,), num_actions=2))
    kwargs = {"env": env, "network": net_cfg, "obs_shape": (4,), "num_actions": 2, "seed": 0}
    unreached = Evaluator(**kwargs, episodes=4, confirm_at=1e9).evaluate(weights, 0)
    assert unreached.confirm_return is None and unreached.confirm_returns == []
    ev = Evaluator(**kwargs, episodes=4, confirm_at=0.0, epsilon=0.5)
    r = ev.evaluate(weights, 0)
    assert r.confirm_return is not None
    assert len(r.confirm_returns) == 4 and r.confirm_return == pytest.approx(
        sum(r.confirm_returns) / 4
    )
    # The confirmation plays the second set of episodes: what a second evaluation would give.
    again = Evaluator(**kwargs, episodes=4, epsilon=0.5)
    again.evaluate(weights, 0)
    assert again.evaluate(weights, 0).mean_return == r.confirm_return
    assert ev.evaluate(weights, 0, confirm=False).confirm_return is None  # after a solve


def test_a_replacement_evaluator_goes_on_with_new_episodes():
    """After an env error the host builds a new evaluator: it must not replay the first seeds."""
    env = EnvConfig(id="CartPole-v1", max_episode_steps=50)
    net_cfg = NetworkConfig(hidden_sizes=[16])
    weights = get_weights(build_q_network(net_cfg, obs_shape=(4,), num_actions=2))
    kwargs = {"env": env, "network": net_cfg, "obs_shape": (4,), "num_actions": 2, "seed": 0}
    first = Evaluator(**kwargs, episodes=4, epsilon=1.0)
    returns = [first.evaluate(weights, 0).returns for _ in range(2)]
    resumed = Evaluator(**kwargs, episodes=4, epsilon=1.0, evaluations_done=1)
    assert resumed.evaluations == 1
    # Same seeds as the first evaluator's second set of episodes, not its first: under
    # random actions (epsilon 1) returns differ from set to set.
    assert returns[0] != returns[1]
    replay = resumed.evaluate(weights, 0).returns
    assert replay != returns[0]


def test_record_spreads_policy_lag_weights_age_and_driver_latency_over_the_interval_calls():
    t = RunTracker(env_id="X", seed=0, target_return=None)
    t.weights_version = 1000
    # 20 calls acting with versions 1000 - 0, 1000 - 10, ..., 1000 - 190.
    for i in range(20):
        t.ingest_actor(
            i % 4, ActorReport(pid=1 + i % 4, weights_version=1000 - 10 * i, weights_age_s=0.1 * i)
        )
        t.driver_latency(0.001 * i)
    t.ingest_actor(0, ActorReport(pid=1, weights_version=-1))  # no weights yet: no lag sample
    rec = t.record()
    assert rec["actors/policy_lag_p50"] == 90  # nearest rank: the 10th of 20
    assert rec["actors/policy_lag_p95"] == 180 and rec["actors/policy_lag_max"] == 190
    assert rec["actors/weights_age_s_max"] == pytest.approx(1.9)
    assert rec["perf/driver_latency_ms_p50"] == pytest.approx(9.0)
    assert rec["perf/driver_latency_ms_max"] == pytest.approx(19.0)
    assert 0.0 <= rec["perf/driver_cpu_s_per_s"] < 1.5  # one process: about one core at most
    # Each interval has its own calls: none since, so no spread in the next record.
    assert "actors/policy_lag_p50" not in t.record()


def test_driver_cpu_is_this_process_cpu_seconds_per_wall_second(monkeypatch):
    """Between two records the driver used 0.3 CPU seconds in 2 wall seconds: 0.15."""
    clock = {"wall": 1000.0, "cpu": 50.0}
    monkeypatch.setattr(time, "time", lambda: clock["wall"])
    monkeypatch.setattr(time, "process_time", lambda: clock["cpu"])
    t = RunTracker(env_id="X", seed=0, target_return=None)
    clock["wall"], clock["cpu"] = 1002.0, 50.3
    assert t.record()["perf/driver_cpu_s_per_s"] == pytest.approx(0.15)
    clock["wall"], clock["cpu"] = 1003.0, 51.2  # the next record: since the previous one
    assert t.record()["perf/driver_cpu_s_per_s"] == pytest.approx(0.9)


def test_spread_uses_nearest_ranks():
    from apex_dqn.core.metrics import spread

    assert spread("x_{stat}", []) == {}
    assert spread("x_{stat}", [3.0]) == {"x_p50": 3.0, "x_p95": 3.0, "x_max": 3.0}
    values = [float(v) for v in range(1, 101)]
    assert spread("x_{stat}", values) == {"x_p50": 50.0, "x_p95": 95.0, "x_max": 100.0}
