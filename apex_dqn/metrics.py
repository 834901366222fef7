"""Metric names, the run's bookkeeping, the status line, ``metrics.jsonl`` and ``summary.json``.

Metric keys are the constants below, grouped by prefix (``charts/``, ``eval/``, ``losses/``,
``replay/``, ``actors/``, ``learner/``, ``perf/``). ``RunTracker`` is the driver's view of a run:
the Ray runtime and the single-process loop both feed it the same events, and it alone decides
when the run is solved and what the summary says.
"""

from __future__ import annotations

import json
import math
import os
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

# The metric catalogue. Every record carries ENV_STEPS and WALL_S (the x-axes of every sink).
# charts/: progress
ENV_STEPS = "charts/env_steps"
LEARNER_STEPS = "charts/learner_steps"
WALL_S = "charts/wall_s"
EPISODE_RETURN = "charts/episode_return"  # exploring actors, latest 100 episodes
EPISODE_LENGTH = "charts/episode_length"
EPISODE_RETURN_EPS = "charts/episode_return_eps_{bucket}"  # actors with eps in a decade, 1e-1..
# eval/: greedy evaluations (latest)
EVAL_RETURN = "eval/mean_return"
EVAL_STD_RETURN = "eval/std_return"
EVAL_MIN_RETURN = "eval/min_return"
EVAL_MAX_RETURN = "eval/max_return"
EVAL_LENGTH = "eval/mean_length"
EVAL_VERSION = "eval/weights_version"
# losses/: the latest update
LOSS = "losses/loss"
MEAN_ABS_TD = "losses/mean_abs_td"
MEAN_Q = "losses/mean_q"
MAX_Q = "losses/max_q"
GRAD_NORM = "losses/grad_norm"
UPDATE_RATIO = "losses/update_ratio"  # ||Adam's step|| / ||parameters|| (sampled)
# replay/
BETA = "replay/beta"
REPLAY_SIZE = "replay/size"
REPLAY_CAPACITY = "replay/capacity"
REPLAY_BYTES = "replay/bytes"
REPLAY_SHARDS = "replay/shards_up"
REPLAY_ADDED = "replay/added"
REPLAY_RATIO = "replay/replay_ratio"
PRIORITY_MEAN = "replay/priority_mean"  # new priorities of the latest batch
PRIORITY_MAX = "replay/priority_max"
IS_WEIGHT_MEAN = "replay/is_weight_mean"  # importance weights of the latest batch
IS_WEIGHT_MIN = "replay/is_weight_min"
SHARD_FAILURES = "replay/shard_failures"
SHARD_RESTARTS = "replay/shard_restarts"
SHARD_SIZE = "replay/shard{shard}/{what}"  # what: size, capacity, bytes
# actors/
ACTOR_RESTARTS = "actors/restarts"
ENV_ERRORS = "actors/env_errors"
PUSHED = "actors/transitions_pushed"
PUSH_LOST = "actors/transitions_lost"
POLICY_LAG = "actors/policy_lag"  # learner version minus the mean version actors act with
WEIGHT_SYNC_AGE = "actors/weight_sync_age_s"  # mean seconds since actors got new weights
ACTOR_STEPS_PER_S = "actors/actor{index}/env_steps_per_s"
ACTOR_RETURN = "actors/actor{index}/episode_return"
ACTOR_LENGTH = "actors/actor{index}/episode_length"
# learner/
LEARNER_RESTARTS = "learner/restarts"
WEIGHTS_VERSION = "learner/weights_version"
SKIPPED_UPDATES = "learner/skipped_updates"
# perf/: rates over the report interval
ENV_STEPS_PER_S = "perf/env_steps_per_s"
LEARNER_UPDATES_PER_S = "perf/learner_updates_per_s"
LEARNER_SAMPLES_PER_S = "perf/learner_samples_per_s"
INSERTS_PER_S = "perf/replay_inserts_per_s"
OBJECT_STORE_USED = "perf/object_store_used_bytes"
# timers/: share of wall-clock time per phase over the report interval (actor phases averaged
# over actors): acting, pushing, weight_sync, throttled (paused by actors.min_replay_ratio);
# sampling (waiting for batches), learning, priorities (sending them), publishing (weights)
TIMER = "timers/{process}_{phase}"
ACTOR_PHASES = ("acting", "pushing", "weight_sync", "throttled")
LEARNER_PHASES = ("sampling", "learning", "priorities", "publishing")


def catalogue() -> list[str]:
    """Every metric name or name template above (templates hold ``{...}`` fields)."""
    return [
        v
        for k, v in globals().items()
        if k.isupper() and isinstance(v, str) and v.split("/")[0] in PREFIXES
    ]


PREFIXES = ("charts", "eval", "losses", "replay", "actors", "learner", "perf", "timers")


def in_catalogue(key: str) -> bool:
    """Whether ``key`` is a catalogue name or an instance of a catalogue template."""
    import re

    for name in catalogue():
        pattern = re.sub(r"\\\{[a-z_]+\\\}", r"[^/]+", re.escape(name))
        if re.fullmatch(pattern, key):
            return True
    return False


def eps_bucket(epsilon: float) -> str:
    """The decade of an exploration epsilon, as a metric-name suffix: 0.4 -> '1e-1'."""
    if epsilon <= 0:
        return "0"
    return f"1e{math.floor(math.log10(epsilon))}"


SUMMARY_KEYS = (
    "solved",
    "time_to_solve_s",
    "env_steps_at_solve",
    "best_eval_return",
    "final_eval_return",
    "env_steps",
    "learner_steps",
    "wall_s",
    "env_steps_per_s",
    "learner_updates_per_s",
    "seed",
    "env_id",
)


def process_start_time() -> float:
    """Wall-clock time at which this process started (psutil when present, else now)."""
    try:
        import psutil

        return float(psutil.Process(os.getpid()).create_time())
    except Exception:  # psutil is a Ray dependency, but keep the pure layer free of it
        return time.time()


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
    replay: Mapping[str, Any] = field(default_factory=dict)
    actor_versions: dict[int, int] = field(default_factory=dict)
    learner_metrics: dict[str, float] = field(default_factory=dict)
    recent_episode_returns: list[float] = field(default_factory=list)
    evals: list[EvalPoint] = field(default_factory=list)
    time_to_solve_s: float | None = None
    env_steps_at_solve: int | None = None
    batch_size: int = 0
    recent_episode_lengths: list[float] = field(default_factory=list)
    last_eval: dict[str, Any] = field(default_factory=dict)
    actors: dict[int, ActorStats] = field(default_factory=dict)
    timers: dict[str, float] = field(default_factory=dict)
    object_store_used: int | None = None
    # With several learners: a digest of each one's final weights (all equal when healthy).
    learner_digests: list[str] | None = None
    # The two evaluations that made the solve: the first and its confirmation.
    solve_returns: tuple[float, float | None] | None = None
    _last_report: tuple[float, int, int] | None = None
    _previous: dict[str, float] = field(default_factory=dict)

    def wall_s(self, now: float | None = None) -> float:
        """Seconds since training started."""
        return (time.time() if now is None else now) - self.train_start

    def add_episode_returns(self, returns: list[float], lengths: Sequence[float] = ()) -> None:
        """Record actors' (exploring) episode returns and lengths; keeps the latest 100."""
        self.recent_episode_returns = (self.recent_episode_returns + list(returns))[-100:]
        self.recent_episode_lengths = (self.recent_episode_lengths + list(lengths))[-100:]

    def add_actor_report(self, index: int, result: Mapping[str, Any]) -> None:
        """One actor call's figures: env steps, episodes, epsilon, phase times, weights age."""
        stats = self.actors.setdefault(index, ActorStats(epsilon=float(result["epsilon"])))
        stats.env_steps += int(result["env_steps"])
        stats.returns = (stats.returns + list(result["episode_returns"]))[-20:]
        stats.lengths = (stats.lengths + list(result.get("episode_lengths", [])))[-20:]
        stats.weights_age_s = float(result.get("weights_age_s", math.nan))
        for phase in ACTOR_PHASES:
            key = TIMER.format(process="actors", phase=phase)
            self.timers[key] = self.timers.get(key, 0.0) + float(result.get(f"{phase}_s", 0.0))
        self.add_episode_returns(result["episode_returns"], result.get("episode_lengths", []))

    def add_learner_timers(self, seconds: Mapping[str, float]) -> None:
        """The learner's cumulative seconds per phase (replacing the previous totals)."""
        for phase in LEARNER_PHASES:
            if phase in seconds:
                self.timers[TIMER.format(process="learner", phase=phase)] = float(seconds[phase])

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
        added = self.replay.get("added", 0.0)
        rec: dict[str, Any] = {
            ENV_STEPS: self.env_steps,
            LEARNER_STEPS: self.learner_steps,
            WALL_S: round(self.wall_s(now), 3),
            ENV_STEPS_PER_S: (self.env_steps - prev_env) / dt,
            LEARNER_UPDATES_PER_S: (self.learner_steps - prev_learn) / dt,
            REPLAY_SIZE: self.replay.get("size", 0),
            REPLAY_CAPACITY: self.replay.get("capacity", 0),
            REPLAY_BYTES: self.replay.get("bytes", 0),
            REPLAY_SHARDS: self.replay.get("shards", 0),
            REPLAY_ADDED: added,
            REPLAY_RATIO: self.replay.get("sampled", 0.0) / added if added else 0.0,
            POLICY_LAG: self.policy_lag(),
            WEIGHTS_VERSION: self.weights_version,
            ACTOR_RESTARTS: self.actor_restarts,
            ENV_ERRORS: self.env_errors,
            PUSHED: self.transitions_pushed,
            PUSH_LOST: self.transitions_lost,
            SHARD_FAILURES: self.shard_failures,
            SHARD_RESTARTS: self.shard_restarts,
            LEARNER_RESTARTS: self.learner_restarts,
            SKIPPED_UPDATES: self.skipped_updates,
        }
        for i, shard in enumerate(self.replay.get("per_shard") or []):
            for what in ("size", "capacity", "bytes"):
                rec[shard_key(i, what)] = None if shard is None else shard[what]
        rec[LEARNER_SAMPLES_PER_S] = rec[LEARNER_UPDATES_PER_S] * self.batch_size
        rec[INSERTS_PER_S] = self._rate("added", float(added), dt)
        if self.object_store_used is not None:
            rec[OBJECT_STORE_USED] = self.object_store_used
        if self.recent_episode_returns:
            rec[EPISODE_RETURN] = _mean(self.recent_episode_returns)
        if self.recent_episode_lengths:
            rec[EPISODE_LENGTH] = _mean(self.recent_episode_lengths)
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
        rec.update(self._actor_metrics(dt))
        for key, total in self.timers.items():
            share = self._rate(key, total, dt)
            rec[key] = (
                share / max(1, len(self.actors)) if key.startswith("timers/actors") else share
            )
        rec.update(self.learner_metrics)
        return {k: _finite_or_none(v) for k, v in rec.items()}

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
                rec[ACTOR_RETURN.format(index=index)] = _mean(stats.returns)
                rec[ACTOR_LENGTH.format(index=index)] = _mean(stats.lengths or [math.nan])
                by_bucket.setdefault(eps_bucket(stats.epsilon), []).extend(stats.returns)
            if math.isfinite(stats.weights_age_s):
                ages.append(stats.weights_age_s)
        for bucket, returns in by_bucket.items():
            rec[EPISODE_RETURN_EPS.format(bucket=bucket)] = _mean(returns)
        if ages:
            rec[WEIGHT_SYNC_AGE] = _mean(ages)
        return rec

    def summary(self) -> dict[str, Any]:
        """The ``summary.json`` of the run so far (every key of SUMMARY_KEYS present)."""
        wall = self.wall_s()
        returns = [e.mean_return for e in self.evals]
        solve_s = self.time_to_solve_s
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
            "target_return": self.target_return,
            "actor_restarts": self.actor_restarts,
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

    _COUNTERS = (
        "env_steps",
        "learner_steps",
        "weights_version",
        "skipped_updates",
        "actor_restarts",
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


def learner_metric_dict(metrics: Any) -> dict[str, float]:
    """The keyed scalars of a ``LearnerMetrics``."""
    return {
        LOSS: metrics.loss,
        MEAN_ABS_TD: metrics.mean_abs_td,
        MEAN_Q: metrics.mean_q,
        MAX_Q: metrics.max_q,
        GRAD_NORM: metrics.grad_norm,
        UPDATE_RATIO: metrics.update_ratio,
        BETA: metrics.beta,
    }


def _mean(values: list[float]) -> float:
    return sum(values) / len(values) if values else math.nan


def _finite_or_none(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def shard_key(shard: int, what: str) -> str:
    """The metrics key of one shard's ``size``, ``capacity`` or ``bytes``."""
    return SHARD_SIZE.format(shard=shard, what=what)


def _shards_text(rec: dict[str, Any]) -> str:
    """Each shard's size/capacity and MiB when there are several (' down' while one is)."""
    parts = []
    i = 0
    while shard_key(i, "size") in rec:
        size = rec[shard_key(i, "size")]
        if size is None:
            parts.append(f"s{i} down")
        else:
            mib = rec[shard_key(i, "bytes")] / 2**20
            parts.append(f"s{i} {size:,d}/{rec[shard_key(i, 'capacity')]:,d} {mib:,.0f} MiB")
        i += 1
    return f" [{'; '.join(parts)}]" if i > 1 else ""


def status_line(rec: dict[str, Any]) -> str:
    """The one-line progress report printed every ``train.report_interval_s``."""
    ev = rec.get(EVAL_RETURN)
    lag = rec.get(POLICY_LAG)
    return (
        f"[{rec[WALL_S]:7.1f}s] env {rec[ENV_STEPS]:>9,d} ({rec[ENV_STEPS_PER_S]:7.0f}/s) | "
        f"learner {rec[LEARNER_STEPS]:>7,d} ({rec[LEARNER_UPDATES_PER_S]:5.0f}/s) | "
        f"replay {int(rec[REPLAY_SIZE]):>8,d}/{int(rec[REPLAY_CAPACITY]):,d} "
        f"({rec.get(REPLAY_BYTES, 0) / 2**20:,.0f} MiB){_shards_text(rec)} "
        f"ratio {rec[REPLAY_RATIO]:4.1f} | eval {'-' if ev is None else f'{ev:7.1f}'} | "
        f"lag {'-' if lag is None else f'{lag:5.0f}'}"
    )


class JsonlWriter:
    """Appends one JSON record per line to ``path`` (flushed each time: a crash loses nothing)."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._file = self.path.open("a", encoding="utf-8")

    def write(self, record: dict[str, Any]) -> None:
        """Append ``record``."""
        self._file.write(json.dumps(record) + "\n")
        self._file.flush()

    def close(self) -> None:
        """Close the file."""
        self._file.close()


def write_json_atomic(path: Path, data: Any) -> None:
    """Write ``data`` as JSON to ``path`` via a temporary file and a rename."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(json.dumps(data, indent=2) + "\n", encoding="utf-8")
    os.replace(tmp, path)
