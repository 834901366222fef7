"""The one driver, on the local runtime with faults injected at its ``Runtime`` seam: a learner
that dies is restored from the latest checkpoint and the run goes on; a role that raises stops
the run with the error; a group that breaks is restarted. No Ray."""

from __future__ import annotations

import json
import re
from pathlib import Path

from apex_dqn.config import (
    ActorsConfig,
    CheckpointConfig,
    Config,
    EvalConfig,
    LearnerConfig,
    NetworkConfig,
    ReplayConfig,
    TrainConfig,
)
from apex_dqn.envs.factory import inspect_env
from apex_dqn.files.checkpoint import state_from_bytes
from apex_dqn.roles import build
from apex_dqn.roles.shard_worker import ShardWorker
from apex_dqn.run import driver
from apex_dqn.run.driver import WorkerFailed, WorkerGone
from apex_dqn.runtime.local import Done, LocalRuntime


def _config(seconds: float = 3.0, **train) -> Config:
    return Config(
        network=NetworkConfig(hidden_sizes=[16]),
        actors=ActorsConfig(num_actors=2, envs_per_actor=2, steps_per_call=16),
        replay=ReplayConfig(capacity=5000, min_size_to_learn=200),
        learner=LearnerConfig(device="cpu", batch_size=32),
        eval=EvalConfig(interval_s=0.5, episodes=2),
        checkpoint=CheckpointConfig(every_s=0.5),
        train=TrainConfig(max_seconds=seconds, report_interval_s=0.5, plot=False, **train),
        runtime="local",
    )


class _FaultyRuntime(LocalRuntime):
    """Answers the first learner call after the ``learner_dies_after``-th checkpoint with
    ``WorkerGone`` (its process died), the ``actor_raises_at``-th actor call with the actor's
    error and the ``actor_misanswers_at``-th with a dict; with ``actor_lost=(index, first,
    count)``, actor ``index``'s calls from its ``first``-th on answer ``WorkerGone`` ``count``
    times (its node gone) before it answers again; records restores."""

    def __init__(
        self,
        *args,
        learner_dies_after=None,
        actor_raises_at=None,
        actor_misanswers_at=None,
        actor_lost=None,
        **kwargs,
    ) -> None:
        super().__init__(*args, **kwargs)
        self.learner_dies_after = learner_dies_after
        self.actor_raises_at = actor_raises_at
        self.actor_misanswers_at = actor_misanswers_at
        self.actor_lost = actor_lost
        self.calls_of: dict[int, int] = {}
        self.lost_calls = 0
        self.learner_calls = self.actor_calls = self.checkpoints = 0
        self.died = False
        self.restores: list[bytes | None] = []
        self.saved: list[bytes] = []
        self.group_restarts = 0

    def call_checkpoint(self, extra):
        self.checkpoints += 1
        return super().call_checkpoint(extra)

    def call_learners(self, seconds):
        self.learner_calls += 1
        if not self.died and self.checkpoints == self.learner_dies_after:
            self.died = True
            return [Done(error=WorkerGone("learner process died"))]
        return super().call_learners(seconds)

    def call_actor(self, index):
        self.actor_calls += 1
        self.calls_of[index] = self.calls_of.get(index, 0) + 1
        if self.actor_lost is not None:
            lost, first, count = self.actor_lost
            if index == lost and self.calls_of[index] >= first and self.lost_calls < count:
                self.lost_calls += 1
                return Done(error=WorkerGone(f"actor {index}'s node died"))
        if self.actor_calls == self.actor_raises_at:
            return Done(error=RuntimeError("the env exploded"))
        if self.actor_calls == self.actor_misanswers_at:
            return Done(value={"env_steps": 16})  # a dict, not an ActorReport

        return super().call_actor(index)

    def result(self, ticket):
        if isinstance(ticket.error, WorkerGone):
            raise ticket.error
        value = super().result(ticket)
        if isinstance(value, bytes):
            self.saved.append(value)  # a checkpoint the driver got
        return value

    def restore_learners(self, data):
        self.restores.append(data)
        self.latest_at_restore = self.saved[-1] if self.saved else None
        return super().restore_learners(data)

    def restart_learner_group(self):
        self.group_restarts += 1


def _train(tmp_path: Path, cfg: Config, **faults) -> tuple[dict, _FaultyRuntime]:
    made: list[_FaultyRuntime] = []

    def open_runtime(cfg, info, out_dir, resumes):
        from contextlib import nullcontext

        made.append(_FaultyRuntime(cfg, info, out_dir, resumes, **faults))
        return nullcontext(made[0])

    summary = driver.train(cfg, inspect_env(cfg.env), tmp_path, open_runtime)
    return summary, made[0]


def test_a_dead_learner_is_restored_from_the_latest_checkpoint_and_the_run_goes_on(tmp_path):
    summary, runtime = _train(tmp_path, _config(seconds=4.0), learner_dies_after=1)
    assert runtime.died and summary["learner_restarts"] == 1
    # The checkpoint the driver had got last before the death was handed to the learner, and
    # the learner went on from its update count.
    assert len(runtime.restores) == 1 and runtime.restores[0] == runtime.latest_at_restore
    restored_steps = state_from_bytes(runtime.restores[0])["learner_steps"]
    assert restored_steps > 0 and summary["learner_steps"] > restored_steps
    assert summary["stop_reason"] == "train.max_seconds reached"
    assert runtime.group_restarts == 0  # one learner: no group to form again


def test_a_lost_actor_counts_one_failure_and_is_down_until_it_answers_again(tmp_path):
    # Twenty failed calls for one loss, then the actor is back: one failure, none down.
    summary, runtime = _train(tmp_path / "back", _config(), actor_lost=(1, 3, 20))
    assert runtime.lost_calls == 20
    assert summary["actor_failures"] == 1 and summary["actors_down"] == []
    assert summary["stop_reason"] == "train.max_seconds reached"
    # Lost for good (its node never comes back): still one failure, and it is down at the end,
    # in the summary and in the last metrics record; the run went on with the other actor.
    summary, runtime = _train(tmp_path / "gone", _config(), actor_lost=(0, 2, 10**9))
    assert summary["actor_failures"] == 1 and summary["actors_down"] == [0]
    last = json.loads((tmp_path / "gone" / "metrics.jsonl").read_text().splitlines()[-1])
    assert last["actors/failures"] == 1 and last["actors/down"] == 1
    assert runtime.calls_of[1] > 10 and summary["env_steps"] > 0


def test_a_role_that_raises_stops_the_run_with_its_error(tmp_path):
    summary, _ = _train(tmp_path, _config(), actor_raises_at=5)
    assert re.fullmatch(
        r"failed: actor [01]: RuntimeError: the env exploded", summary["stop_reason"]
    )
    assert summary["learner_restarts"] == 0
    assert (tmp_path / "checkpoint.pt").is_file()  # the final checkpoint is still written


def test_an_answer_of_the_wrong_type_stops_the_run_like_a_failed_role(tmp_path):
    summary, _ = _train(tmp_path, _config(), actor_misanswers_at=5)
    assert re.fullmatch(r"failed: actor [01] answered with a dict", summary["stop_reason"])
    assert (tmp_path / "checkpoint.pt").is_file()  # the final checkpoint is still written


def test_the_run_stops_at_max_env_steps_and_counts_every_step(tmp_path):
    summary, _ = _train(tmp_path, _config(seconds=60.0, max_env_steps=3000))
    assert summary["stop_reason"] == "train.max_env_steps reached"
    # Whole actor calls of 2 envs x 16 steps: past the cap by at most the calls of the round
    # that crossed it and those in flight, one per actor each.
    assert 3000 <= summary["env_steps"] < 3000 + 4 * 2 * 16
    assert summary["env_steps"] % 32 == 0 and summary["wall_s"] < 60


def test_a_stopped_run_snapshots_every_transition_its_shards_hold(tmp_path):
    cfg = _config(seconds=60.0, max_env_steps=2000)
    # Periodic snapshots never come due in this run: any file is the one written at the stop.
    cfg.replay = ReplayConfig(
        capacity=5000, min_size_to_learn=200, num_shards=2, snapshot_every_s=3600.0
    )
    summary, runtime = _train(tmp_path, cfg)
    held = [len(shard.replay) for shard in runtime.shards]
    assert summary["replay_saved"] == sum(held) and min(held) > 0
    info = inspect_env(cfg.env)
    for s, size in enumerate(held):
        reloaded = ShardWorker(build.shard_spec(cfg, info, s, tmp_path), load_snapshot=True)
        assert reloaded.restored_size() == size


def test_without_snapshots_a_stopped_run_writes_none(tmp_path):
    summary, _ = _train(tmp_path, _config(seconds=60.0, max_env_steps=500))
    assert summary["replay_saved"] is None
    assert not (tmp_path / build.REPLAY_DIR).exists()


def test_worker_failed_carries_the_cause():
    cause = ValueError("bad")
    assert str(WorkerFailed(cause)) == "ValueError: bad" and WorkerFailed(cause).cause is cause
