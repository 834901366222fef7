"""Faults survived on real Ray: killed actor, shard and learner, a flaky env, and a broken one."""

from __future__ import annotations

import itertools
import json
import threading
import time

import pytest
import ray

from apex_dqn.config import Config
from apex_dqn.envs.factory import inspect_env
from apex_dqn.runtime import ray_runtime
from tests.integration.helpers import run_cli

pytestmark = [pytest.mark.ray, pytest.mark.slow]


def _named(suffix: str) -> tuple[str, str] | None:
    for entry in ray.util.list_named_actors(all_namespaces=True):
        if entry["name"].startswith("apex-dqn-") and entry["name"].endswith(suffix):
            return entry["name"], entry["namespace"]
    return None


class Killer(threading.Thread):
    """Once the learner has trained a little, kill an actor, then a shard, then the learner."""

    def __init__(self) -> None:
        super().__init__(daemon=True)
        self.killed: list[str] = []
        self.learner_steps_at_kill: int | None = None
        self.error: BaseException | None = None

    def _kill(self, suffix: str) -> None:
        name = _named(suffix)
        assert name is not None, f"no actor named *{suffix}"
        ray.kill(ray.get_actor(name[0], namespace=name[1]), no_restart=False)
        self.killed.append(suffix)

    def run(self) -> None:
        try:
            deadline = time.time() + 60
            while time.time() < deadline:
                time.sleep(0.5)
                if not ray.is_initialized() or _named("-learner") is None:
                    continue
                learner = ray.get_actor(*_named("-learner"))
                steps = ray.get(learner.status.remote()).learner_steps
                if steps >= 300:
                    break
            self._kill("-actor0")
            time.sleep(2.0)
            self._kill("-shard1")
            time.sleep(3.0)  # periodic checkpoints every second: at least one exists by now
            learner = ray.get_actor(*_named("-learner"))
            self.learner_steps_at_kill = ray.get(learner.status.remote()).learner_steps
            self._kill("-learner")
        except BaseException as exc:  # reported by the test
            self.error = exc


def test_run_survives_killed_actor_shard_learner_and_a_flaky_env(tmp_path):
    from omegaconf import OmegaConf

    overrides = [
        "env.id=apex_dqn.envs.chaos:FlakyCartPole-v1",
        "replay.num_shards=2",
        "replay.capacity=20000",
        "checkpoint.every_s=1",
        "train.max_seconds=30",
        "train.stop_on_target=false",
        "train.report_interval_s=1",
        "ray.num_cpus=2",
    ]
    cfg = OmegaConf.to_object(
        OmegaConf.merge(OmegaConf.structured(Config), OmegaConf.from_dotlist(overrides))
    )
    assert isinstance(cfg, Config)
    info = inspect_env(cfg.env)
    killer = Killer()
    killer.start()
    summary = ray_runtime.train(cfg, info, tmp_path)
    killer.join(timeout=5)
    assert killer.error is None, killer.error
    assert killer.killed == ["-actor0", "-shard1", "-learner"]

    assert summary["actor_restarts"] >= 1
    assert summary["learner_restarts"] == 1
    assert summary["shard_restarts"] >= 1, "the killed shard was not seen to come back"
    assert summary["env_errors"] >= 1
    # Training went on after the learner restart, from its checkpoint rather than from scratch.
    assert summary["learner_steps"] > killer.learner_steps_at_kill
    records = [json.loads(x) for x in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    assert records[-1]["actors/restarts"] >= 1 and records[-1]["learner/restarts"] == 1
    assert records[-1]["replay/shard_restarts"] >= 1, "the killed shard did not rejoin"
    # Both shards (10,000 each) hold data again: the restarted one is seen refilling.
    assert records[-1]["replay/size"] > 10_000 and records[-1]["replay/shards_up"] == 2
    steps = [r["charts/learner_steps"] for r in records]
    drop = max(a - b for a, b in itertools.pairwise(steps))
    assert drop < 1_000, f"the learner fell back {drop} updates: not restored from a checkpoint"
    assert summary["best_eval_return"] is not None and summary["best_eval_return"] > 100


def test_an_env_that_keeps_failing_stops_the_run_with_a_clear_error(tmp_path):
    proc = run_cli(
        "env.id=apex_dqn.envs.chaos:BrokenCartPole-v1",
        "actors.num_actors=1",
        f"output_dir={tmp_path}",
        "train.max_seconds=60",
        timeout=120,
    )
    assert proc.returncode == 1, proc.stderr[-2000:]
    errors = [line for line in proc.stderr.splitlines() if line.startswith("apex-dqn: error:")]
    assert len(errors) == 1
    assert "EnvFailure" in errors[0] and "BrokenCartPole-v1" in errors[0]
    assert "actors.max_env_errors=10" in errors[0]
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert summary["stop_reason"].startswith("failed")
