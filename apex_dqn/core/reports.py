"""The typed reports roles send to the driver, one dataclass per kind of answer.

Every call the driver makes on a role (an actor's ``run``, a learner's ``run_for``, the
evaluator's ``evaluate_latest``, a learner's ``restore``) answers with one of these. The driver
dispatches on the type and the run state (``apex_dqn.run.state``) ingests them; nothing reads
string keys out of a dict. Plain data only, so that Ray can ship them between processes.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from apex_dqn.core.types import ReplayTotals


@dataclass
class EvalResult:
    """One greedy evaluation.

    Attributes:
        mean_return: mean undiscounted return over the episodes.
        std_return: their standard deviation.
        min_return: the worst episode.
        max_return: the best episode.
        mean_length: mean episode length.
        weights_version: the version of the weights evaluated.
        episodes: how many episodes.
        returns: every episode's return.
        confirm_return: the mean return of a second, independent evaluation of the same
            weights (new episodes), run only when the first reached ``confirm_at``; else None.
        confirm_returns: that second evaluation's every episode's return (empty without one).
    """

    mean_return: float
    std_return: float
    min_return: float
    max_return: float
    mean_length: float
    weights_version: int
    episodes: int
    returns: list[float] = field(default_factory=list)
    confirm_return: float | None = None
    confirm_returns: list[float] = field(default_factory=list)


@dataclass
class ActorReport:
    """What one actor did: in one ``run`` call of its worker, or in ``Actor.run_steps`` (which
    fills the steps, episodes, transitions, env errors and weights version; the worker adds
    the rest).

    Attributes:
        env_steps: environment steps (summed over its envs).
        episode_returns, episode_lengths: the episodes that ended.
        transitions: n-step transitions made.
        env_errors: environment errors it recovered from.
        pushed, lost: transitions sent to shards, and those whose shard died with them.
        weights_version: the version it acts with now.
        epsilon: its exploration epsilon.
        pid: its process id (a new one means the process was restarted).
        waited_s: seconds it paused behind the learner (``actors.min_replay_ratio``).
        seconds: seconds per phase (``ACTOR_PHASES``) in this call.
        weights_age_s: seconds since its weights last changed (None before the first).
        ended_at: wall-clock time the call returned (the driver's latency is measured from
            it).
    """

    env_steps: int = 0
    episode_returns: list[float] = field(default_factory=list)
    episode_lengths: list[int] = field(default_factory=list)
    transitions: int = 0
    env_errors: int = 0
    pushed: int = 0
    lost: int = 0
    weights_version: int = -1
    epsilon: float = 0.0
    pid: int = 0
    waited_s: float = 0.0
    seconds: dict[str, float] = field(default_factory=dict)
    weights_age_s: float | None = None
    ended_at: float = 0.0


@dataclass
class LearnerReport:
    """A learner's counters after one ``run_for`` call (or a ``status`` query).

    Attributes:
        updates: updates made in this call.
        batches_learned: batches this learner brought to updates since it started.
        learner_steps: updates of the network so far (a group's updates, counted once).
        weights_version: the version it last published.
        skipped_updates: updates skipped for a non-finite loss or gradient.
        replay: the shards' totals (``ShardBook.totals``), ``added`` across shard restarts
            and ``sampled`` by all learners.
        metrics: keyed scalars of the latest update (``metrics`` catalogue).
        shard_failures, shard_restarts: shard events this learner process saw.
        shards_down: shards that did not answer its latest call.
        seconds: cumulative seconds per phase (``LEARNER_PHASES``) of this process.
        first_update_at: wall-clock time of this process's first update (None: none yet).
    """

    updates: int
    batches_learned: int
    learner_steps: int
    weights_version: int
    skipped_updates: int
    replay: ReplayTotals
    metrics: dict[str, float]
    shard_failures: int
    shard_restarts: int
    shards_down: int
    seconds: dict[str, float]
    first_update_at: float | None = None


@dataclass
class Restored:
    """A learner's answer to ``restore``: where it stands and a digest of its online weights."""

    learner_steps: int
    weights_version: int
    weights_digest: str


@dataclass
class Evaluated:
    """A finished evaluation."""

    result: EvalResult


@dataclass
class EvalFailed:
    """An evaluation abandoned because the environment raised (its envs are rebuilt)."""

    env_errors: int = 1


@dataclass
class NothingNew:
    """The evaluator found no weights newer than the ones it last evaluated."""
