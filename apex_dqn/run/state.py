"""The run state: the driver's bookkeeping of one run, fed by the roles' typed reports.

``RunTracker`` ingests what the roles report (``ingest_actor``, ``ingest_learner``,
``ingest_eval``, ...) and alone decides when the run is solved, what each metrics record holds
(names from ``apex_dqn.core.metrics``) and what ``summary.json`` says. Both runtimes feed it through
the one driver (``apex_dqn.run.driver``).
"""

from __future__ import annotations

import math
import time
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from apex_dqn import STARTED_AT
from apex_dqn.core.metrics import (
    ACTOR_FAILURES,
    ACTOR_LENGTH,
    ACTOR_PHASES,
    ACTOR_RESTARTS,
    ACTOR_RETURN,
    ACTOR_STEPS_PER_S,
    ACTORS_DOWN,
    DRIVER_CPU,
    DRIVER_LATENCY_STAT,
    ENV_ERRORS,
    ENV_STEPS,
    ENV_STEPS_PER_S,
    EPISODE_LENGTH,
    EPISODE_RETURN,
    EPISODE_RETURN_EPS,
    EVAL_LENGTH,
    EVAL_MAX_RETURN,
    EVAL_MIN_RETURN,
    EVAL_NEW,
    EVAL_RETURN,
    EVAL_STD_RETURN,
    EVAL_VERSION,
    INSERTS_PER_S,
    LEARNER_PHASES,
    LEARNER_RESTARTS,
    LEARNER_SAMPLES_PER_S,
    LEARNER_STEPS,
    LEARNER_UPDATES_PER_S,
    OBJECT_STORE_USED,
    POLICY_LAG,
    POLICY_LAG_STAT,
    PUSH_LOST,
    PUSHED,
    REPLAY_ADDED,
    REPLAY_BYTES,
    REPLAY_CAPACITY,
    REPLAY_RATIO,
    REPLAY_SHARDS,
    REPLAY_SIZE,
    SHARD_FAILURES,
    SHARD_RESTARTS,
    SKIPPED_UPDATES,
    TIMER,
    WALL_S,
    WEIGHT_SYNC_AGE,
    WEIGHTS_AGE_STAT,
    WEIGHTS_VERSION,
    eps_bucket,
    finite_or_none,
    mean_or_nan,
    shard_key,
    spread,
)
from apex_dqn.core.reports import ActorReport, EvalFailed, Evaluated, LearnerReport, NothingNew
from apex_dqn.core.rules import IdentityWatch
from apex_dqn.core.types import ReplayTotals


def process_start_time() -> float:
    """Wall-clock time at which this process started running apex-dqn (``apex_dqn.STARTED_AT``,
    the package's import), not the OS's creation time of the process (see there)."""
    return STARTED_AT


@dataclass
class EvalPoint:
    """One greedy evaluation on the learning curve (``process_s``: seconds since the process
    started, NaN for points restored from a checkpoint that did not record it)."""

    env_steps: int
    wall_s: float
    mean_return: float
    process_s: float = math.nan


@dataclass
class ActorStats:
    """What the driver knows of one actor: its epsilon, steps, latest episodes, weights age."""

    epsilon: float
    env_steps: int = 0
    returns: list[float] = field(default_factory=list)
    lengths: list[float] = field(default_factory=list)
    weights_age_s: float = math.nan


@dataclass
class RunTracker:
    """The driver's bookkeeping of one run (see module docstring).

    Args:
        env_id: the environment, for the summary.
        seed: the run's seed, for the summary.
        target_return: the return at which the run counts as solved (None: never).
        process_start: wall-clock time the process started; time_to_solve_s counts from it.
    """

    env_id: str
    seed: int
    target_return: float | None
    process_start: float = field(default_factory=process_start_time)
    train_start: float = field(default_factory=time.time)
    env_steps: int = 0
    learner_steps: int = 0
    weights_version: int = -1
    skipped_updates: int = 0
    actor_restarts: int = 0
    actor_failures: int = 0
    learner_restarts: int = 0
    env_errors: int = 0
    transitions_pushed: int = 0
    transitions_lost: int = 0
    shard_failures: int = 0
    shard_restarts: int = 0
    resumes: int = 0
    stop_reason: str | None = None
    interrupted_by: int | None = None
    resumed_from: dict[str, Any] | None = None
    replay: ReplayTotals = field(default_factory=ReplayTotals)
    actor_versions: dict[int, int] = field(default_factory=dict)
    actors_down: set[int] = field(default_factory=set)
    learner_metrics: dict[str, float] = field(default_factory=dict)
    recent_episode_returns: list[float] = field(default_factory=list)
    evals: list[EvalPoint] = field(default_factory=list)
    time_to_solve_s: float | None = None
    # Wall-clock times of start-up's milestones (``mark``): where the time to the first update
    # goes.
    milestones: dict[str, float] = field(default_factory=dict)
    env_steps_at_solve: int | None = None
    batch_size: int = 0
    recent_episode_lengths: list[float] = field(default_factory=list)
    last_eval: dict[str, Any] = field(default_factory=dict)
    actors: dict[int, ActorStats] = field(default_factory=dict)
    timers: dict[str, float] = field(default_factory=dict)
    object_store_used: int | None = None
    # With several learners: a digest of each one's final weights (all equal when healthy).
    learner_digests: list[str] | None = None
    # Transitions in the replay snapshots written at the end (None: snapshots off).
    replay_saved: int | None = None
    # The two evaluations that made the solve: the first and its confirmation.
    solve_returns: tuple[float, float | None] | None = None
    _last_report: tuple[float, int, int] | None = None
    # Evaluations not yet written to a metrics record (EVAL_NEW).
    _unwritten_evals: list[dict[str, Any]] = field(default_factory=list)
    _actor_pids: IdentityWatch = field(default_factory=IdentityWatch)
    # Shard failures and restarts before the current learner process (which counts from 0).
    _shard_base: tuple[int, int] = (0, 0)
    _previous: dict[str, float] = field(default_factory=dict)
    # This report interval's per-call samples, by metric template (``metrics.spread``).
    _samples: dict[str, list[float]] = field(default_factory=dict)
    _last_cpu: tuple[float, float] = field(
        default_factory=lambda: (time.time(), time.process_time())
    )

    def wall_s(self, now: float | None = None) -> float:
        """Seconds since training started."""
        return (time.time() if now is None else now) - self.train_start

    def add_episode_returns(self, returns: list[float], lengths: Sequence[float] = ()) -> None:
        """Record actors' (exploring) episode returns and lengths; keeps the latest 100."""
        self.recent_episode_returns = (self.recent_episode_returns + list(returns))[-100:]
        self.recent_episode_lengths = (self.recent_episode_lengths + list(lengths))[-100:]

    def mark(self, milestone: str, at: float | None = None) -> None:
        """Record when ``milestone`` was first reached (now, or ``at``)."""
        self.milestones.setdefault(milestone, time.time() if at is None else at)

    def startup(self) -> dict[str, float]:
        """Seconds from process start to each start-up milestone reached so far."""
        marks = {"train_called": self.train_start, **self.milestones}
        return {k: round(v - self.process_start, 3) for k, v in marks.items()}

    def actor_gone(self, index: int) -> None:
        """A call found actor ``index``'s process gone: one failure until it answers again
        (the driver may see several failed calls for one loss)."""
        if index not in self.actors_down:
            self.actors_down.add(index)
            self.actor_failures += 1

    def ingest_actor(self, index: int, call: ActorReport) -> None:
        """One actor call: its work, its episodes and phase times, and a restart if its
        process id changed (the driver may see several failed calls for one restart)."""
        self.actors_down.discard(index)
        if self._actor_pids.restarted(index, call.pid):
            self.actor_restarts += 1
        if call.env_steps > 0:
            self.mark("first_actor_call")
        self.count_actor_work(call)
        stats = self.actors.setdefault(index, ActorStats(epsilon=call.epsilon))
        stats.env_steps += call.env_steps
        stats.returns = (stats.returns + list(call.episode_returns))[-20:]
        stats.lengths = (stats.lengths + list(call.episode_lengths))[-20:]
        stats.weights_age_s = math.nan if call.weights_age_s is None else call.weights_age_s
        for phase in ACTOR_PHASES:
            key = TIMER.format(process="actors", phase=phase)
            self.timers[key] = self.timers.get(key, 0.0) + call.seconds.get(phase, 0.0)
        self.add_episode_returns(call.episode_returns, call.episode_lengths)
        self.actor_versions[index] = call.weights_version
        if self.weights_version >= 0 and call.weights_version >= 0:
            lag = max(0, self.weights_version - call.weights_version)
            self._sample(POLICY_LAG_STAT, lag)
        if call.weights_age_s is not None:
            self._sample(WEIGHTS_AGE_STAT, call.weights_age_s)

    def driver_latency(self, seconds: float) -> None:
        """One actor call's wait from its end until the driver handled it."""
        self._sample(DRIVER_LATENCY_STAT, 1000.0 * max(0.0, seconds))

    def _sample(self, template: str, value: float) -> None:
        self._samples.setdefault(template, []).append(float(value))

    def count_actor_work(self, call: ActorReport) -> None:
        """Add one actor call's env steps, env errors and pushed and lost transitions."""
        self.env_steps += call.env_steps
        self.env_errors += call.env_errors
        self.transitions_pushed += call.pushed
        self.transitions_lost += call.lost

    def ingest_learner(self, call: LearnerReport) -> None:
        """A learner call's counters, replay totals, latest metrics and phase times (shard
        events continue the run's totals across learner restarts)."""
        self.ingest_status(call)
        self.learner_metrics = call.metrics
        for phase in LEARNER_PHASES:
            if phase in call.seconds:
                key = TIMER.format(process="learner", phase=phase)
                self.timers[key] = float(call.seconds[phase])
        self.shard_failures = self._shard_base[0] + call.shard_failures
        self.shard_restarts = self._shard_base[1] + call.shard_restarts

    def ingest_status(self, call: LearnerReport) -> None:
        """The learner's counters and replay totals (its answer after the last call)."""
        if call.first_update_at is not None:  # a restarted learner's own comes later
            self.mark("first_update", at=call.first_update_at)
        self.learner_steps = call.learner_steps
        self.weights_version = call.weights_version
        self.skipped_updates = call.skipped_updates
        self.replay = call.replay

    def learner_restarted(self) -> None:
        """A new learner process: count it; its shard counters start from 0 again."""
        self.learner_restarts += 1
        self._shard_base = (self.shard_failures, self.shard_restarts)

    def ingest_eval(self, report: Evaluated | EvalFailed | NothingNew) -> bool:
        """An evaluator's answer; True when an evaluation reaches the target."""
        if isinstance(report, Evaluated):
            return self.add_eval(report.result.mean_return, asdict(report.result))
        if isinstance(report, EvalFailed):
            self.env_errors += report.env_errors
        return False

    def add_eval(self, mean_return: float, details: Mapping[str, Any] | None = None) -> bool:
        """Record a greedy evaluation at the current env steps; True when it reaches the target.

        ``details`` (an ``EvalResult`` as a dict) adds std, min, max and length to the records.
        """
        self.last_eval = dict(details or {})
        now = time.time()
        point = EvalPoint(
            self.env_steps, self.wall_s(now), float(mean_return), now - self.process_start
        )
        self.evals.append(point)
        self._unwritten_evals.append(
            {
                # Its position on the learning curve (summary.json's evals): a resumed run
                # writes the evaluations after its checkpoint again, with the same indices.
                "index": len(self.evals) - 1,
                "env_steps": point.env_steps,
                "wall_s": round(point.wall_s, 3),
                "process_s": round(point.process_s, 3),
                "mean_return": finite_or_none(point.mean_return),
                **{
                    k: self.last_eval[k]
                    for k in self._EVAL_DETAILS
                    if self.last_eval.get(k) not in (None, [])  # no confirmation: no keys
                },
            }
        )
        # A solve needs the evaluator's second, independent evaluation to reach it too.
        confirm = self.last_eval.get("confirm_return")
        reached = self.target_return is not None and mean_return >= self.target_return
        reached = reached and (confirm is None or confirm >= self.target_return)
        if reached and self.time_to_solve_s is None:
            self.time_to_solve_s = now - self.process_start
            self.env_steps_at_solve = point.env_steps
            self.solve_returns = (float(mean_return), confirm)
        return reached

    def policy_lag(self) -> float:
        """Learner updates between the published weights and the mean actor's weights."""
        if not self.actor_versions or self.weights_version < 0:
            return math.nan
        mean_actor = sum(self.actor_versions.values()) / len(self.actor_versions)
        return max(0.0, self.weights_version - mean_actor)

    def record(self) -> dict[str, Any]:
        """One metrics.jsonl record of the current state, with rates since the last record."""
        now = time.time()
        prev_t, prev_env, prev_learn = self._last_report or (self.train_start, 0, 0)
        dt = max(now - prev_t, 1e-9)
        self._last_report = (now, self.env_steps, self.learner_steps)
        added = self.replay.added
        rec: dict[str, Any] = {
            ENV_STEPS: self.env_steps,
            LEARNER_STEPS: self.learner_steps,
            WALL_S: round(self.wall_s(now), 3),
            ENV_STEPS_PER_S: (self.env_steps - prev_env) / dt,
            LEARNER_UPDATES_PER_S: (self.learner_steps - prev_learn) / dt,
            REPLAY_SIZE: self.replay.size,
            REPLAY_CAPACITY: self.replay.capacity,
            REPLAY_BYTES: self.replay.bytes,
            REPLAY_SHARDS: self.replay.shards,
            REPLAY_ADDED: added,
            REPLAY_RATIO: self.replay.replay_ratio,
            POLICY_LAG: self.policy_lag(),
            DRIVER_CPU: self._driver_cpu(now),
            WEIGHTS_VERSION: self.weights_version,
            ACTOR_RESTARTS: self.actor_restarts,
            ACTOR_FAILURES: self.actor_failures,
            ACTORS_DOWN: len(self.actors_down),
            ENV_ERRORS: self.env_errors,
            PUSHED: self.transitions_pushed,
            PUSH_LOST: self.transitions_lost,
            SHARD_FAILURES: self.shard_failures,
            SHARD_RESTARTS: self.shard_restarts,
            LEARNER_RESTARTS: self.learner_restarts,
            SKIPPED_UPDATES: self.skipped_updates,
        }
        for i, shard in enumerate(self.replay.per_shard):
            for what in ("size", "capacity", "bytes"):
                rec[shard_key(i, what)] = None if shard is None else getattr(shard, what)
        rec[LEARNER_SAMPLES_PER_S] = rec[LEARNER_UPDATES_PER_S] * self.batch_size
        rec[INSERTS_PER_S] = self._rate("added", float(added), dt)
        if self.object_store_used is not None:
            rec[OBJECT_STORE_USED] = self.object_store_used
        if self.recent_episode_returns:
            rec[EPISODE_RETURN] = mean_or_nan(self.recent_episode_returns)
        if self.recent_episode_lengths:
            rec[EPISODE_LENGTH] = mean_or_nan(self.recent_episode_lengths)
        if self.evals:
            rec[EVAL_RETURN] = self.evals[-1].mean_return
        for name, key in (
            ("std_return", EVAL_STD_RETURN),
            ("min_return", EVAL_MIN_RETURN),
            ("max_return", EVAL_MAX_RETURN),
            ("mean_length", EVAL_LENGTH),
            ("weights_version", EVAL_VERSION),
        ):
            if name in self.last_eval:
                rec[key] = self.last_eval[name]
        if self._unwritten_evals:
            rec[EVAL_NEW], self._unwritten_evals = self._unwritten_evals, []
        rec.update(self._actor_metrics(dt))
        for key, total in self.timers.items():
            share = self._rate(key, total, dt)
            rec[key] = (
                share / max(1, len(self.actors)) if key.startswith("timers/actors") else share
            )
        rec.update(self.learner_metrics)
        return {k: finite_or_none(v) for k, v in rec.items()}

    def _rate(self, name: str, total: float, dt: float) -> float:
        """Increase per second of a cumulative ``total`` since the previous record."""
        previous = self._previous.get(name, 0.0)
        self._previous[name] = total
        return max(0.0, total - previous) / dt

    def _actor_metrics(self, dt: float) -> dict[str, float]:
        """Per actor: env steps/s and latest episodes; per epsilon decade: episode returns;
        the mean age of the actors' weights."""
        rec: dict[str, float] = {}
        by_bucket: dict[str, list[float]] = {}
        ages = []
        for index, stats in sorted(self.actors.items()):
            steps_key = ACTOR_STEPS_PER_S.format(index=index)
            rec[steps_key] = self._rate(steps_key, stats.env_steps, dt)
            if stats.returns:
                rec[ACTOR_RETURN.format(index=index)] = mean_or_nan(stats.returns)
                rec[ACTOR_LENGTH.format(index=index)] = mean_or_nan(stats.lengths or [math.nan])
                by_bucket.setdefault(eps_bucket(stats.epsilon), []).extend(stats.returns)
            if math.isfinite(stats.weights_age_s):
                ages.append(stats.weights_age_s)
        for bucket, returns in by_bucket.items():
            rec[EPISODE_RETURN_EPS.format(bucket=bucket)] = mean_or_nan(returns)
        if ages:
            rec[WEIGHT_SYNC_AGE] = mean_or_nan(ages)
        for template, values in self._samples.items():
            rec.update(spread(template, values))
        self._samples = {}
        return rec

    def _driver_cpu(self, now: float) -> float:
        """CPU seconds this process used per wall second since the previous record."""
        cpu = time.process_time()
        then, cpu_then = self._last_cpu
        self._last_cpu = (now, cpu)
        return (cpu - cpu_then) / max(now - then, 1e-9)

    def summary(self) -> dict[str, Any]:
        """The ``summary.json`` of the run so far (every key of SUMMARY_KEYS present)."""
        wall = self.wall_s()
        returns = [e.mean_return for e in self.evals]
        solve_s = self.time_to_solve_s
        startup = self.startup()
        return {
            "solved": solve_s is not None,
            "time_to_solve_s": None if solve_s is None else round(solve_s, 3),
            "env_steps_at_solve": self.env_steps_at_solve,
            "best_eval_return": max(returns) if returns else None,
            "final_eval_return": returns[-1] if returns else None,
            "env_steps": self.env_steps,
            "learner_steps": self.learner_steps,
            "wall_s": round(wall, 3),
            "env_steps_per_s": self.env_steps / wall if wall > 0 else 0.0,
            "learner_updates_per_s": self.learner_steps / wall if wall > 0 else 0.0,
            "seed": self.seed,
            "env_id": self.env_id,
            "started_at": self.process_start,
            "first_update_at": self.milestones.get("first_update"),
            "startup_s": startup,
            "first_update_s": startup.get("first_update"),
            "target_return": self.target_return,
            "actor_restarts": self.actor_restarts,
            "actor_failures": self.actor_failures,
            "actors_down": sorted(self.actors_down),
            "learner_restarts": self.learner_restarts,
            "shard_failures": self.shard_failures,
            "shard_restarts": self.shard_restarts,
            "env_errors": self.env_errors,
            "skipped_updates": self.skipped_updates,
            "resumes": self.resumes,
            "stop_reason": self.stop_reason,
            "interrupted_by": self.interrupted_by,
            "resumed_from": self.resumed_from,
            "learner_weights_digests": self.learner_digests,
            "replay_saved": self.replay_saved,
            "solve_eval_return": None if self.solve_returns is None else self.solve_returns[0],
            "confirm_eval_return": None if self.solve_returns is None else self.solve_returns[1],
            "evals": [
                {
                    "env_steps": e.env_steps,
                    "wall_s": round(e.wall_s, 3),
                    "process_s": None if math.isnan(e.process_s) else round(e.process_s, 3),
                    "mean_return": e.mean_return,
                }
                for e in self.evals
            ],
        }

    # What an EVAL_NEW entry keeps of the evaluator's result besides the curve point.
    _EVAL_DETAILS = (
        "std_return",
        "min_return",
        "max_return",
        "mean_length",
        "weights_version",
        "returns",
        "confirm_return",
        "confirm_returns",
    )

    _COUNTERS = (
        "env_steps",
        "learner_steps",
        "weights_version",
        "skipped_updates",
        "actor_restarts",
        "actor_failures",
        "learner_restarts",
        "env_errors",
        "transitions_pushed",
        "transitions_lost",
        "shard_failures",
        "shard_restarts",
        "resumes",
    )

    def state_dict(self) -> dict[str, Any]:
        """Plain data to continue this run's counters and learning curve after a resume."""
        return {
            **{k: getattr(self, k) for k in self._COUNTERS},
            "wall_s": self.wall_s(),
            "evals": [[e.env_steps, e.wall_s, e.mean_return, e.process_s] for e in self.evals],
            "time_to_solve_s": self.time_to_solve_s,
            "env_steps_at_solve": self.env_steps_at_solve,
            "solve_returns": None if self.solve_returns is None else list(self.solve_returns),
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Continue from ``state_dict``: counters, curve, and the wall clock (shifted back)."""
        for k in self._COUNTERS:
            if k in state:
                setattr(self, k, int(state[k]))
        self.train_start = time.time() - float(state.get("wall_s", 0.0))
        self.evals = [
            EvalPoint(int(e[0]), float(e[1]), float(e[2]), float(e[3]) if len(e) > 3 else math.nan)
            for e in state.get("evals", [])
        ]
        self.time_to_solve_s = state.get("time_to_solve_s")
        self.env_steps_at_solve = state.get("env_steps_at_solve")
        solve = state.get("solve_returns")
        self.solve_returns = None if solve is None else (float(solve[0]), solve[1])
        self._last_report = (time.time(), self.env_steps, self.learner_steps)
        self._shard_base = (self.shard_failures, self.shard_restarts)
