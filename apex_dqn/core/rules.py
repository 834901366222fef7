"""Rules several roles share, each written once: the replay-ratio gates, the error streak,
restart detection and phase timers.

Pure Python with an injectable clock, so that each rule has fast tests of its own; the roles
(``apex_dqn.roles``) and the driver (``apex_dqn.run``) hold instances of them.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Hashable, Iterable, Iterator
from contextlib import contextmanager


class ReplayRatioGate:
    """``learner.max_replay_ratio``: samples drawn per transition inserted stay at or below
    ``max_ratio`` (0: no limit).

    A learner restored from a checkpoint counts its draws and the inserts from the restore on
    (``rebase``), with ``grace`` transitions of slack to start from: the replay it meets holds
    data its predecessor already drew from.
    """

    def __init__(self, max_ratio: float, samples_per_update: int) -> None:
        self.max_ratio = max_ratio
        self.samples_per_update = samples_per_update
        self._base_steps = 0
        self._base_added = 0
        self._grace = 0

    def rebase(self, steps: int, added: int, grace: int) -> None:
        """Count from ``steps`` updates and ``added`` inserts on, with ``grace`` slack."""
        self._base_steps, self._base_added, self._grace = steps, added, grace

    def allows(self, steps: int, added: int) -> bool:
        """Whether the learner may stand at ``steps`` updates when ``added`` transitions have
        been inserted (both counted from the run's start)."""
        if self.max_ratio <= 0:
            return True
        drawn = (steps - self._base_steps) * self.samples_per_update
        return drawn <= self.max_ratio * (added - self._base_added + self._grace)


class ActorThrottle:
    """``actors.min_replay_ratio``: an actor pauses while its share of the inserted transitions
    exceeds what the learner's draws allow at that ratio.

    The learner's progress is read from the weights version the actor holds (the version is the
    learner's update count), so the gate needs no extra messages. A restarted actor, whose own
    count starts at 0, and a learner restored from an older checkpoint, which publishes an
    older version again, recalibrate: the actor counts as caught up, neither owed nor owing
    the difference, or actor and learner could wait on each other. If the version has not moved
    for ``stall_s``, ``stalled`` says so: the actor steps one chunk anyway, a liveness guarantee
    for states this accounting does not foresee.
    """

    def __init__(
        self,
        *,
        min_replay_ratio: float,
        samples_per_update: int,
        min_size_to_learn: int,
        num_actors: int,
        restarted: bool = False,
        stall_s: float = 30.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.ratio = min_replay_ratio
        self._samples_per_update = samples_per_update
        self._min_size = min_size_to_learn
        self._num_actors = num_actors
        self._restarted = restarted
        self._stall_s = stall_s
        self._clock = clock
        self._base = 0.0
        self._version: int | None = None  # the version the gate last saw
        self._moved_at = clock()  # when that version last changed

    def ahead(self, version: int, delivered: int) -> bool:
        """Whether an actor holding weights ``version`` that has delivered ``delivered``
        transitions (pushed and not lost) must wait."""
        if self.ratio <= 0:
            return False
        if self._restarted and version < 0:
            return False  # a restarted actor without weights yet: the next pull calibrates
        learner_samples = max(0, version) * self._samples_per_update
        allowed = (self._min_size + learner_samples / self.ratio) / self._num_actors
        if self._restarted or (self._version is not None and version < self._version):
            self._base = allowed - delivered
            self._restarted = False
        if version != self._version:
            self._version, self._moved_at = version, self._clock()
        return self._base + delivered >= allowed

    def stalled(self) -> bool:
        """Whether the learner has published nothing new for ``stall_s``; if so, the stall
        clock starts again (the caller steps one chunk)."""
        if self._clock() - self._moved_at < self._stall_s:
            return False
        self._moved_at = self._clock()
        return True


class ErrorStreak:
    """Failures in a row of one kind (an environment that raises): ``failed`` says when the
    streak reaches ``limit``; a success ends the streak."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.count = 0

    def failed(self) -> bool:
        """Count one failure; True when this makes ``limit`` in a row."""
        self.count += 1
        return self.count >= self.limit

    def succeeded(self) -> None:
        """End the streak."""
        self.count = 0


class IdentityWatch:
    """Restart detection: a component that answers with a new identity (a process id, a replay
    instance id) than the one it answered with before has been restarted."""

    def __init__(self) -> None:
        self._seen: dict[Hashable, Hashable] = {}

    def restarted(self, key: Hashable, identity: Hashable) -> bool:
        """Record ``identity`` for ``key``; True if ``key`` had answered with another one."""
        previous = self._seen.get(key)
        self._seen[key] = identity
        return previous is not None and previous != identity


class PhaseTimer:
    """Cumulative seconds per named phase (the ``timers/`` metrics)."""

    def __init__(self, phases: Iterable[str], clock: Callable[[], float] = time.monotonic) -> None:
        self.seconds = dict.fromkeys(phases, 0.0)
        self._clock = clock

    @contextmanager
    def phase(self, name: str) -> Iterator[None]:
        """Count the time spent in the ``with`` block toward ``name``."""
        start = self._clock()
        try:
            yield
        finally:
            self.seconds[name] += self._clock() - start

    def reset(self) -> None:
        """All phases back to zero."""
        self.seconds = dict.fromkeys(self.seconds, 0.0)
