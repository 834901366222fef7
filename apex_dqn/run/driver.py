"""The one driver of a run, for every runtime: keep a call in flight per role, dispatch the typed
reports to the run state, checkpoint, report, decide when to stop.

The driver keeps one call in flight per actor (``run``), one per learner (``run_for``, called on
all learners of a group together) and one for the evaluator (``evaluate_latest``); transitions
and weights never pass through it, only reports do. It reaches the roles through a ``Runtime``:
the Ray runtime makes its calls remote and a dead role's process is restarted by Ray (the driver
resubmits the call and counts the restart); the local runtime runs each call in this process
when it is made.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from contextlib import AbstractContextManager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from apex_dqn.config import Config
from apex_dqn.core.reports import (
    ActorReport,
    EvalFailed,
    Evaluated,
    LearnerReport,
    NothingNew,
    Restored,
)
from apex_dqn.envs.factory import EnvInfo
from apex_dqn.roles.build import target_return
from apex_dqn.run.outputs import Resume, RunOutputs, checkpoint_extra
from apex_dqn.run.signals import StopSignals
from apex_dqn.run.state import RunTracker

LEARNER_CALL_S = 0.25


@dataclass(frozen=True)
class ActorRun:
    """An actor's ``run`` call in flight."""

    index: int


@dataclass(frozen=True)
class LearnerRun:
    """A learner's ``run_for`` call in flight (every rank of a group is called together)."""

    rank: int


@dataclass(frozen=True)
class CheckpointRun:
    """Rank 0's ``checkpoint_bytes`` call in flight."""


@dataclass(frozen=True)
class EvalRun:
    """The evaluator's ``evaluate_latest`` call in flight."""


Pending = ActorRun | LearnerRun | CheckpointRun | EvalRun


class WorkerGone(RuntimeError):
    """A role's process died (it is being restarted); its call may or may not have run."""


class WorkerFailed(RuntimeError):
    """A role raised: an error of our code or of the user's environment. Fatal to the run."""

    def __init__(self, cause: BaseException) -> None:
        super().__init__(f"{type(cause).__name__}: {cause}")
        self.cause = cause


class Runtime(Protocol):
    """What the driver needs of a runtime: calls on the roles that answer with tickets, and the
    few operations on the learners that a restart needs."""

    num_actors: int
    num_learners: int

    def call_actor(self, index: int) -> Any:
        """Submit actor ``index``'s ``run``; a ticket."""
        ...

    def call_learners(self, seconds: float) -> list[Any]:
        """Submit every learner's ``run_for(seconds)``; a ticket per rank."""
        ...

    def call_checkpoint(self, extra: dict[str, Any]) -> Any:
        """Submit rank 0's ``checkpoint_bytes(extra)``; a ticket."""
        ...

    def call_eval(self, confirm: bool) -> Any:
        """Submit the evaluator's ``evaluate_latest(confirm)``; a ticket."""
        ...

    def start_evaluator(self) -> None:
        """Create the evaluator."""
        ...

    def wait(self, tickets: list[Any], timeout: float) -> list[Any]:
        """Every finished ticket among ``tickets`` (at least one unless ``timeout`` passes)."""
        ...

    def result(self, ticket: Any) -> Any:
        """A finished ticket's answer; raises ``WorkerGone`` or ``WorkerFailed``."""
        ...

    def restore_learners(self, data: bytes | None) -> Restored:
        """Send every learner ``data`` (None: fresh weights); rank 0's answer."""
        ...

    def restart_learner_group(self) -> None:
        """Restart every learner of a group and form the group anew."""
        ...

    def learner_group_broken(self) -> bool:
        """Whether a learner of the group died since the group formed."""
        ...

    def finish_learners(self, timeout_s: float, digests: bool) -> list[str] | None:
        """Stop all learners but rank 0; with ``digests`` (every call in flight answered),
        first the group's weight digests (None for one learner)."""
        ...

    def stop_actors(self) -> None:
        """Stop the actors and the evaluator for good."""
        ...

    def learner_status(self) -> LearnerReport | None:
        """Rank 0's counters now (None if it does not answer)."""
        ...

    def replay_restored(self) -> int:
        """Transitions the shards reloaded from their snapshots."""
        ...

    def snapshot_replay(self, timeout_s: float) -> int:
        """Have every shard write its snapshot now; return the transitions written (a shard
        that does not answer within ``timeout_s`` keeps its last periodic snapshot)."""
        ...

    def object_store_used(self) -> int | None:
        """Bytes in the object store (None where there is none)."""
        ...


def _describe(call: Pending) -> str:
    """How a failure names the role: "actor 3", "learner 0", "checkpoint 0", "eval 0"."""
    match call:
        case ActorRun(index):
            return f"actor {index}"
        case LearnerRun(rank):
            return f"learner {rank}"
        case CheckpointRun():
            return "checkpoint 0"
        case _:
            return "eval 0"


def stop_reason(
    *,
    failure: str | None,
    signal: str | None,
    target_reached: bool,
    env_steps: int,
    max_env_steps: int,
    seconds_left: float,
) -> str | None:
    """Why the run stops now (None: it goes on), the first that holds of: a role failed, a
    signal came, the target was reached (and ``train.stop_on_target``), ``train.max_env_steps``
    or ``train.max_seconds`` ran out."""
    if failure is not None:
        return f"failed: {failure}"
    if signal is not None:
        return f"interrupted by {signal}"
    if target_reached:
        return "target return reached"
    if env_steps >= max_env_steps:
        return "train.max_env_steps reached"
    if seconds_left <= 0:
        return "train.max_seconds reached"
    return None


class Driver:
    """The driver loop of one run (see module docstring)."""

    def __init__(
        self,
        cfg: Config,
        info: EnvInfo,
        runtime: Runtime,
        outputs: RunOutputs,
        signals: StopSignals,
    ) -> None:
        self.cfg = cfg
        self.info = info
        self.rt = runtime
        self.out = outputs
        self.signals = signals
        self.tracker = outputs.tracker
        self.inflight: dict[Any, Pending] = {}
        self.target_reached = False
        self.failure: str | None = None
        self.latest_checkpoint: bytes | None = None
        self.evaluator_started = False
        # Answers of the learners' current round of run_for calls, by rank.
        self.learner_round: dict[int, LearnerReport] = {}
        every = cfg.checkpoint.every_s
        self.next_checkpoint = time.time() + every if every > 0 else math.inf

    def _extra(self) -> dict[str, Any]:
        return checkpoint_extra(self.cfg, self.info, self.tracker)

    def _submit(self, call: Pending) -> None:
        """Make ``call`` again (a learner's: every rank's)."""
        match call:
            case ActorRun(index):
                self.inflight[self.rt.call_actor(index)] = call
            case LearnerRun():
                # All learners of a group are called together: their calls end at one round.
                self.learner_round = {}
                for rank, ticket in enumerate(self.rt.call_learners(LEARNER_CALL_S)):
                    self.inflight[ticket] = LearnerRun(rank)
            case CheckpointRun():
                self.inflight[self.rt.call_checkpoint(self._extra())] = call
            case EvalRun():
                # Once solved, evaluations need no confirmation (train.stop_on_target=false).
                confirm = self.tracker.time_to_solve_s is None
                self.inflight[self.rt.call_eval(confirm)] = call

    def _pending(self, kind: type) -> list[Any]:
        """The tickets of the calls in flight of one kind (``ActorRun``, ``LearnerRun``...)."""
        return [ticket for ticket, call in self.inflight.items() if isinstance(call, kind)]

    def restore_learner(self, data: bytes | None) -> Restored:
        """Send ``data`` (a checkpoint, or None for fresh weights) to every learner."""
        return self.rt.restore_learners(data)

    def _learner_died(self) -> None:
        """A new learner process takes the latest checkpoint and the run goes on. In a group the
        others are stuck in a collective with the dead one: all restart and form the group anew,
        and all restore the same checkpoint."""
        self.tracker.learner_restarted()
        for ticket in self._pending(CheckpointRun) + self._pending(LearnerRun):
            del self.inflight[ticket]
        if self.rt.num_learners > 1:
            self.rt.restart_learner_group()
        restored = self.restore_learner(self.latest_checkpoint)
        print(
            f"apex-dqn: learner restarted from the checkpoint at update {restored.learner_steps:,}",
            flush=True,
        )

    def _handle(self, ticket: Any) -> None:
        call = self.inflight.pop(ticket)
        try:
            report = self.rt.result(ticket)
        except WorkerGone:
            if isinstance(call, ActorRun):
                self.tracker.actor_gone(call.index)
            if isinstance(call, LearnerRun):
                self._learner_died()
            if not isinstance(call, CheckpointRun):
                self._submit(call)
            return
        except WorkerFailed as exc:
            group = isinstance(call, LearnerRun) and self.rt.num_learners > 1
            if group and self.rt.learner_group_broken():
                # Another learner of the group died mid-round: restart the group.
                self._learner_died()
                self._submit(call)
                return
            self.failure = f"{_describe(call)}: {exc}"
            return
        t = self.tracker
        match report:
            case ActorReport():
                assert isinstance(call, ActorRun)
                t.ingest_actor(call.index, report)
                if report.ended_at > 0:
                    t.driver_latency(time.time() - report.ended_at)
            case LearnerReport():
                assert isinstance(call, LearnerRun)
                self.learner_round[call.rank] = report
                if len(self.learner_round) < self.rt.num_learners:
                    return  # the round goes on until every learner has answered
                t.ingest_learner(self.learner_round[0])
                if self.cfg.eval.enabled and not self.evaluator_started and t.learner_steps > 0:
                    # Started only now: at start-up its process would compete with the actors
                    # and the learner for the CPU, only to evaluate the untrained network.
                    self.rt.start_evaluator()
                    self.evaluator_started = True
                    self._submit(EvalRun())
            case bytes():
                self.latest_checkpoint = report
                self.out.save_checkpoint(report)
                return
            case Evaluated() | EvalFailed() | NothingNew():
                self.target_reached = t.ingest_eval(report) or self.target_reached
            case _:  # a bug of ours: the run stops as for a failed role, with its outputs
                self.failure = f"{_describe(call)} answered with a {type(report).__name__}"
                return
        self._submit(call)

    def _should_stop(self, deadline: float) -> str | None:
        return stop_reason(
            failure=self.failure,
            signal=self.signals.name if self.signals.received is not None else None,
            target_reached=self.target_reached and self.cfg.train.stop_on_target,
            env_steps=self.tracker.env_steps,
            max_env_steps=self.cfg.train.max_env_steps,
            seconds_left=deadline - time.time(),
        )

    def loop(self) -> str:
        """Run until a stop condition holds; return the reason."""
        for i in range(self.rt.num_actors):
            self._submit(ActorRun(i))
        self._submit(LearnerRun(0))
        deadline = time.time() + self.cfg.train.max_seconds
        next_report = time.time() + self.cfg.train.report_interval_s
        while (reason := self._should_stop(deadline)) is None:
            now = time.time()
            if now >= self.next_checkpoint:
                if not self._pending(CheckpointRun):
                    self._submit(CheckpointRun())
                self.next_checkpoint = now + self.cfg.checkpoint.every_s
            timeout = max(0.0, min(next_report, deadline, self.next_checkpoint) - now)
            for ticket in self.rt.wait(list(self.inflight), min(timeout, 0.5)):
                if ticket in self.inflight:  # a learner restart drops the learner's tickets
                    self._handle(ticket)
            if time.time() >= next_report:
                self.tracker.object_store_used = self.rt.object_store_used()
                self.out.report()
                # max(): after a long blocking step (a learner restart) report once, not in a burst.
                next_report = max(next_report + self.cfg.train.report_interval_s, time.time() + 0.5)
        return reason

    def drain_actors(self, timeout_s: float = 1.0) -> None:
        """Let the actors' calls in flight finish (a few ms each) so their pushes are counted."""
        tickets = self._pending(ActorRun)
        deadline = time.monotonic() + timeout_s
        while tickets and time.monotonic() < deadline:
            for ticket in self.rt.wait(tickets, max(0.0, deadline - time.monotonic())):
                tickets.remove(ticket)
                del self.inflight[ticket]
                try:
                    call: ActorReport = self.rt.result(ticket)
                except Exception:  # a call lost at shutdown only goes uncounted
                    continue
                self.tracker.count_actor_work(call)

    def finish_learners(self, timeout_s: float = 30.0) -> None:
        """Wait for the learners' calls in flight; then stop all but rank 0, which alone is
        needed for the last counters and checkpoint."""
        tickets = self._pending(LearnerRun)
        deadline = time.monotonic() + timeout_s
        pending = list(tickets)
        while pending and time.monotonic() < deadline:
            for ticket in self.rt.wait(pending, max(0.0, deadline - time.monotonic())):
                pending.remove(ticket)
        for ticket in tickets:
            del self.inflight[ticket]
        digests = self.rt.finish_learners(timeout_s, digests=not pending)
        if digests is not None:
            self.tracker.learner_digests = digests
        status = self.rt.learner_status()
        if status is not None:
            # The summary, the last metrics record and the final checkpoint agree.
            self.tracker.ingest_status(status)

    def final_checkpoint(self) -> None:
        """Checkpoint the learner once more (after a restart if it just died)."""
        for _ in range(2):
            ticket = self.rt.call_checkpoint(self._extra())
            self.rt.wait([ticket], 600.0)
            try:
                data = self.rt.result(ticket)
            except WorkerGone:
                self._learner_died()
                continue
            self.latest_checkpoint = data
            self.out.save_checkpoint(data)
            return


def train(
    cfg: Config,
    info: EnvInfo,
    out_dir: Path,
    open_runtime: Callable[[Config, EnvInfo, Path, int], AbstractContextManager[Runtime]],
    resume: Resume | None = None,
    on_stopped: Callable[[], None] | None = None,
    started_at: float | None = None,
) -> dict[str, Any]:
    """Run Ape-X DQN with ``cfg`` on the runtime ``open_runtime`` gives; write the run's files
    to ``out_dir``; return the summary.

    ``open_runtime(cfg, info, out_dir, resumes)`` is a context manager that starts the roles and
    stops them on exit. With ``resume``, counters, curve and learner continue from its
    checkpoint. ``on_stopped`` is called once the actors have stopped, while shards and
    learner still live (the soak benchmark reads the shards' counters there).
    ``started_at`` is the origin of ``time_to_solve_s`` (default: when this process started
    running apex-dqn; a second run in one process, from the Python API, passes its own start).
    """
    tracker = RunTracker(
        env_id=cfg.env.id,
        seed=cfg.seed,
        target_return=target_return(cfg, info),
        batch_size=cfg.learner.batch_size * cfg.learner.num_learners,
    )
    if started_at is not None:
        tracker.process_start = started_at
    if resume is not None:
        resume.apply_to(tracker)
    outputs: RunOutputs | None = None
    # The summary and plots are written while the runtime shuts down (Ray takes about a
    # second); the final checkpoint is the last thing the roles were needed for.
    with ThreadPoolExecutor(max_workers=1) as pool:
        try:
            with (
                StopSignals() as signals,
                open_runtime(cfg, info, out_dir, tracker.resumes) as runtime,
            ):
                signals.reclaim()  # from ray.init, which sets SIGTERM to sys.exit
                tracker.mark("runtime_ready")
                outputs = RunOutputs(out_dir, cfg, tracker)
                driver = Driver(cfg, info, runtime, outputs, signals)
                if resume is not None:
                    restored = driver.restore_learner(resume.data)
                    driver.latest_checkpoint = resume.data
                    tracker.resumed_from = {
                        "run_dir": str(resume.run_dir),
                        "learner_steps": restored.learner_steps,
                        "weights_version": restored.weights_version,
                        "weights_digest": restored.weights_digest,
                        "replay_restored": runtime.replay_restored(),
                    }
                print(
                    f"apex-dqn: {cfg.env.id}, {cfg.actors.num_actors} actors x "
                    f"{cfg.actors.envs_per_actor} envs, {cfg.replay.num_shards} replay shard(s), "
                    f"target return {tracker.target_return}, output {outputs.dir}"
                    + (f", resumed at update {tracker.learner_steps:,}" if resume else ""),
                    flush=True,
                )
                reason = driver.loop()
                tracker.stop_reason = reason
                tracker.interrupted_by = signals.received
                driver.drain_actors()
                # Actors and evaluator stop now, so the checkpoint and plot get the CPU.
                runtime.stop_actors()
                driver.finish_learners()
                outputs.report()
                print(f"apex-dqn: stopping ({reason})", flush=True)
                if on_stopped is not None:
                    on_stopped()
                driver.final_checkpoint()
                if cfg.replay.snapshot_every_s > 0:
                    # Every pushed transition is in the snapshot a resume reloads, not only
                    # those before the last periodic one.
                    tracker.replay_saved = runtime.snapshot_replay(timeout_s=120.0)
                finished = pool.submit(outputs.finish)
            return finished.result()
        finally:
            if outputs is not None:
                outputs.close_sinks()  # a failed run still finishes its wandb run
