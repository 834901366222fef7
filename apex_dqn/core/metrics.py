"""Metric names and their helpers: the catalogue, the status line and the ``metrics.jsonl`` writer.

Metric keys are the constants below, grouped by prefix (``charts/``, ``eval/``, ``losses/``,
``replay/``, ``actors/``, ``learner/``, ``perf/``, ``timers/``). The run's bookkeeping, which
fills them, is ``apex_dqn.run.state.RunTracker``.
"""

from __future__ import annotations

import contextlib
import json
import math
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
# Every evaluation since the previous record, once, each with its per-episode returns and, when
# it was confirmed, its confirmation's (metrics.jsonl only: the other sinks take scalars).
EVAL_NEW = "eval/new"
# losses/: the latest update
LOSS = "losses/loss"
MEAN_ABS_TD = "losses/mean_abs_td"
MEAN_Q = "losses/mean_q"
MAX_Q = "losses/max_q"
GRAD_NORM = "losses/grad_norm"
UPDATE_RATIO = "losses/update_ratio"  # ||Adam's step|| / ||parameters|| (sampled)
DEAD_UNITS = "losses/dead_units"  # hidden units no observation of a batch activates (sampled)
DEAD_UNITS_MAX = "losses/dead_units_max"  # the same in the hidden layer with the most
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
# Actor outages (a call found the actor's process gone or unreachable), once per outage, and
# the actors not answering yet: an actor whose node is gone waits for a node with room for it
# (Ray restarts it there).
ACTOR_FAILURES = "actors/failures"
ACTORS_DOWN = "actors/down"
ENV_ERRORS = "actors/env_errors"
PUSHED = "actors/transitions_pushed"
PUSH_LOST = "actors/transitions_lost"
POLICY_LAG = "actors/policy_lag"  # learner version minus the mean version actors act with
WEIGHT_SYNC_AGE = "actors/weight_sync_age_s"  # mean seconds since actors got new weights
# Over the actor calls of the report interval, stat: p50, p95, max. The policy lag of one call
# is the learner's latest version minus the version the call acted with, in learner updates;
# the weights' age is the seconds since that actor last got new weights.
POLICY_LAG_STAT = "actors/policy_lag_{stat}"
WEIGHTS_AGE_STAT = "actors/weights_age_s_{stat}"
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
# The driver: CPU seconds per wall second of its process, and, over the actor calls of the
# interval (stat: p50, p95, max), the milliseconds from an actor call's end to the driver
# handling it and calling the actor again (the actor idles meanwhile).
DRIVER_CPU = "perf/driver_cpu_s_per_s"
DRIVER_LATENCY_STAT = "perf/driver_latency_ms_{stat}"
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


def learner_metric_dict(metrics: Any) -> dict[str, float]:
    """The keyed scalars of a ``LearnerMetrics``."""
    return {
        LOSS: metrics.loss,
        MEAN_ABS_TD: metrics.mean_abs_td,
        MEAN_Q: metrics.mean_q,
        MAX_Q: metrics.max_q,
        GRAD_NORM: metrics.grad_norm,
        UPDATE_RATIO: metrics.update_ratio,
        DEAD_UNITS: metrics.dead_units,
        DEAD_UNITS_MAX: metrics.dead_units_max,
        BETA: metrics.beta,
    }


def spread(template: str, values: list[float]) -> dict[str, float]:
    """``template``'s p50, p95 and max of ``values`` (nearest rank; no keys when empty)."""
    if not values:
        return {}
    ordered = sorted(values)
    rank = max(0, math.ceil(0.95 * len(ordered)) - 1)
    return {
        template.format(stat="p50"): ordered[(len(ordered) - 1) // 2],
        template.format(stat="p95"): ordered[rank],
        template.format(stat="max"): ordered[-1],
    }


def mean_or_nan(values: list[float]) -> float:
    return sum(values) / len(values) if values else math.nan


def finite_or_none(value: Any) -> Any:
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


def read_jsonl(path: Path) -> list[dict[str, Any]]:
    """The records of a JSON-lines file that may still be written to: a last line without its
    newline that is not whole JSON is a record being appended (one record may take several
    writes), not a corrupt file, and is left out. Raises FileNotFoundError if ``path`` is
    missing, json.JSONDecodeError for any other line that is not JSON."""
    text = Path(path).read_text(encoding="utf-8")
    complete, _, tail = text.rpartition("\n")
    records = [json.loads(line) for line in complete.splitlines() if line.strip()]
    if tail.strip():  # an object cut short cannot parse: its closing brace comes last
        with contextlib.suppress(json.JSONDecodeError):
            records.append(json.loads(tail))
    return records


def _drop_unended_tail(path: Path) -> None:
    """Cut ``path`` back to its last newline: what follows is a record whose writer was killed
    mid-write, and appending after it would join the next record to it on one corrupt line."""
    if not path.is_file():
        return
    with path.open("rb+") as f:
        data = f.read()
        if data and not data.endswith(b"\n"):
            f.truncate(data.rfind(b"\n") + 1)


class JsonlWriter:
    """Appends one JSON record per line to ``path`` (flushed each time: a crash loses nothing)."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        _drop_unended_tail(self.path)  # a record cut short by a kill, before a resume appends
        self._file = self.path.open("a", encoding="utf-8")

    def write(self, record: dict[str, Any]) -> None:
        """Append ``record``."""
        self._file.write(json.dumps(record) + "\n")
        self._file.flush()

    def close(self) -> None:
        """Close the file."""
        self._file.close()
