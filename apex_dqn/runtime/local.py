"""The local runtime: the same roles and the same driver as under Ray, in this process.

Ports call the shards and the parameter server directly, and every call the driver makes runs
when it is made, so its ticket is finished at once: actors act in turn, then the learner learns
until no batch can be had (the replay-ratio gate) or a call's time is up, then the evaluator
evaluates when ``eval.interval_s`` has passed. Policy lag, the data flow, the gates and the
outputs are those of a Ray run, only sequential. No process can die here without the run, so
nothing is ever restarted.
"""

from __future__ import annotations

import contextlib
import sys
import time
import traceback
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from apex_dqn.config import Config
from apex_dqn.core.reports import ActorReport, LearnerReport, NothingNew, Restored
from apex_dqn.core.rules import ActorThrottle
from apex_dqn.envs.factory import EnvInfo
from apex_dqn.roles import build
from apex_dqn.roles.actor_worker import ActorWorker
from apex_dqn.roles.evaluator_worker import EvaluatorWorker
from apex_dqn.roles.learner_worker import LearnerWorker
from apex_dqn.roles.parameter_server import ParameterServer
from apex_dqn.roles.shard_worker import ShardWorker
from apex_dqn.run import driver
from apex_dqn.run.driver import WorkerFailed
from apex_dqn.run.outputs import Resume

IDLE_SLEEP_S = 0.002


def _did_work(value: Any) -> bool:
    """Whether a call's answer shows work done (env steps, updates, an evaluation)."""
    if isinstance(value, ActorReport):
        return value.env_steps > 0
    if isinstance(value, LearnerReport):
        return value.updates > 0
    return not isinstance(value, NothingNew)


class Done:
    """A finished call: its value, or the exception it raised."""

    __slots__ = ("error", "value")

    def __init__(self, value: Any = None, error: BaseException | None = None) -> None:
        self.value = value
        self.error = error

    @staticmethod
    def of(call: Callable[[], Any]) -> Done:
        """Run ``call`` now."""
        try:
            return Done(call())
        except Exception as exc:  # the roles' errors reach the driver as under Ray
            return Done(error=exc)


class LocalReplayPort:
    """``ReplayPort`` over shards in this process."""

    def __init__(self, shards: Sequence[ShardWorker]) -> None:
        self._shards = list(shards)

    @property
    def num_shards(self) -> int:
        return len(self._shards)

    def add(self, shard: int, batch: Any) -> Done:
        return Done(self._shards[shard].add(batch))

    def sample_many(self, shard: int, batch_size: int, beta: float, num_batches: int) -> Done:
        return Done(self._shards[shard].sample_many(batch_size, beta, num_batches))

    def update_priorities(self, shard: int, ids_B: np.ndarray, priorities_B: np.ndarray) -> None:
        self._shards[shard].update_priorities(ids_B, priorities_B)

    def stats(self, shard: int) -> Done:
        return Done(self._shards[shard].stats())

    def wait(self, tickets: Sequence[Any], num_returns: int, timeout: float | None) -> list[Any]:
        return list(tickets)[:num_returns]

    def result(self, ticket: Any, timeout: float | None = None) -> Any:
        return ticket.value


class LocalWeightStore:
    """``WeightStore`` over a ``ParameterServer`` in this process (weights as numpy dicts)."""

    def __init__(self, ps: ParameterServer) -> None:
        self._ps = ps

    def publish(self, weights: dict[str, np.ndarray], version: int, force: bool = False) -> None:
        self._ps.publish(weights, version, force)

    def pull_if_newer(self, version: int) -> tuple[dict[str, np.ndarray] | None, int]:
        weights, latest = self._ps.pull_if_newer(version)
        return weights, latest


class LocalRuntime:
    """``Runtime`` over roles in this process (see module docstring)."""

    def __init__(self, cfg: Config, info: EnvInfo, out_dir: Path, resumes: int) -> None:
        self._cfg, self._info, self._resumes = cfg, info, resumes
        self.shards = [
            ShardWorker(
                build.shard_spec(cfg, info, s, out_dir),
                snapshot_every_s=cfg.replay.snapshot_every_s,
                load_snapshot=resumes > 0,
            )
            for s in range(cfg.replay.num_shards)
        ]
        self.replay = LocalReplayPort(self.shards)
        self.weights = LocalWeightStore(ParameterServer())
        self.learner = LearnerWorker(
            build.learner_spec(cfg, info).build(),
            replay_cfg=cfg.replay,
            replay=self.replay,
            weights=self.weights,
            seed=cfg.seed,
        )
        self.actors = [self._actor(i) for i in range(cfg.actors.num_actors)]
        self.evaluator: EvaluatorWorker | None = None
        self.num_actors = len(self.actors)
        self.num_learners = 1
        self._stopped = False

    def _actor(self, index: int) -> ActorWorker:
        cfg = self._cfg
        spec = build.actor_spec(cfg, self._info, index, generation=self._resumes)
        throttle = ActorThrottle(
            min_replay_ratio=cfg.actors.min_replay_ratio,
            samples_per_update=cfg.learner.batch_size,
            min_size_to_learn=cfg.replay.min_size_to_learn,
            num_actors=cfg.actors.num_actors,
        )
        # The learner cannot move while an actor waits here: an actor ahead returns at once.
        return ActorWorker(
            spec.build(),
            cfg=cfg.actors,
            index=index,
            replay=self.replay,
            weights=self.weights,
            throttle=throttle,
            max_wait_s=0.0,
        )

    def call_actor(self, index: int) -> Done:
        return Done.of(self.actors[index].run)

    def call_learners(self, seconds: float) -> list[Done]:
        return [Done.of(lambda: self.learner.run_for(seconds, until_idle=True))]

    def call_checkpoint(self, extra: dict[str, Any]) -> Done:
        return Done.of(lambda: self.learner.checkpoint_bytes(extra))

    def call_eval(self, confirm: bool) -> Done:
        assert self.evaluator is not None
        evaluator = self.evaluator
        return Done.of(lambda: evaluator.evaluate_latest(confirm))

    def start_evaluator(self) -> None:
        cfg = self._cfg
        self.evaluator = EvaluatorWorker(
            build.evaluator_spec(cfg, self._info, generation=self._resumes),
            weights=self.weights,
            interval_s=cfg.eval.interval_s,
            max_env_errors=cfg.actors.max_env_errors,
            block=False,
        )

    def wait(self, tickets: list[Any], timeout: float) -> list[Any]:
        # Every call has run already. When none did any work (actors paused behind the
        # learner, the learner waiting for data), rest a moment rather than spin a core.
        if not any(_did_work(t.value) for t in tickets):
            time.sleep(IDLE_SLEEP_S)
        return list(tickets)

    def result(self, ticket: Done) -> Any:
        if ticket.error is not None:
            # As a Ray worker's log would, show where it raised; the run stops with its message.
            traceback.print_exception(ticket.error, file=sys.stderr)
            raise WorkerFailed(ticket.error) from ticket.error
        return ticket.value

    def restore_learners(self, data: bytes | None) -> Restored:
        return self.learner.restore(data)

    def restart_learner_group(self) -> None:
        raise RuntimeError("the local runtime has one learner, in this process")

    def learner_group_broken(self) -> bool:
        return False

    def finish_learners(self, timeout_s: float, digests: bool) -> list[str] | None:
        return None

    def stop_actors(self) -> None:
        if self._stopped:
            return
        self._stopped = True
        for worker in self.actors:
            with contextlib.suppress(Exception):
                worker.actor.close()
        if self.evaluator is not None:
            with contextlib.suppress(Exception):
                self.evaluator.evaluator.close()

    def learner_status(self) -> LearnerReport | None:
        return self.learner.status()

    def replay_restored(self) -> int:
        return sum(shard.restored_size() for shard in self.shards)

    def snapshot_replay(self, timeout_s: float) -> int:
        return sum(shard.snapshot() or 0 for shard in self.shards)

    def object_store_used(self) -> int | None:
        return None


@contextlib.contextmanager
def open_local_runtime(
    cfg: Config, info: EnvInfo, out_dir: Path, resumes: int
) -> Iterator[LocalRuntime]:
    """The roles of one run in this process; their environments and the learner's staging
    threads are closed on exit."""
    runtime = LocalRuntime(cfg, info, out_dir, resumes)
    try:
        yield runtime
    finally:
        runtime.stop_actors()
        runtime.learner.close()


def train_local(
    cfg: Config,
    info: EnvInfo,
    out_dir: Path,
    resume: Resume | None = None,
    on_stopped: Callable[[], None] | None = None,
    started_at: float | None = None,
) -> dict[str, Any]:
    """Train in this process with the same roles, driver, stop rules and outputs as on Ray."""
    return driver.train(cfg, info, out_dir, open_local_runtime, resume, on_stopped, started_at)
