"""The learner's sample feeder: an iterator of batches staged on the learner's device.

Behind ``SampleFeeder.batches`` (and ``rounds``, for a learner of a group), sample requests are
kept in flight, the batches they return are staged ahead of the updates, and their new
priorities are routed back to the shards they came from (``learned``).

A request asks one shard (``ShardBook.pick``) for ``learner.batches_per_request`` batches at
once; when the last of them has been learned from, their priorities go back in one call. At
most ``learner.prefetch`` requests are in flight, and none is sent while the replay holds less
than ``replay.min_size_to_learn`` or the replay-ratio gate is closed.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from apex_dqn.config import LearnerConfig, ReplayConfig
from apex_dqn.core.rules import PhaseTimer, ReplayRatioGate
from apex_dqn.core.types import ReplayTotals
from apex_dqn.roles.ports import LearnerComponent, ReplayPort, ShardDown, samples_of, stats_of
from apex_dqn.roles.shard_book import ShardBook

if TYPE_CHECKING:
    from apex_dqn.algo.learner import StagedBatch

STATS_TIMEOUT_S = 5.0
# How long to sleep when no request may be sent (the replay is still filling, or the ratio
# gate is closed) before asking again.
IDLE_SLEEP_S = 0.005
# In a group, the longest wait for a request's batches before a round: the other learners
# wait in the round for this one.
ROUND_WAIT_S = 0.002


@dataclass
class _Request:
    """A sample request whose batches are being learned from."""

    shard: int
    left: int
    ids: list[np.ndarray] = field(default_factory=list)
    priorities: list[np.ndarray] = field(default_factory=list)


@dataclass
class FedBatch:
    """One batch on its way to an update: its request, ids, weights and staging.

    Attributes:
        request: the sample request it came with.
        ids_B: its rows' ids in their shard.
        weights_B: the importance weights the shard gave it.
    """

    request: _Request
    ids_B: np.ndarray
    weights_B: np.ndarray
    _future: Future

    @property
    def staged(self) -> StagedBatch:
        """The batch on the learner's device (waits for its staging thread if it has one)."""
        return self._future.result()


class SampleFeeder:
    """Keeps a ``Learner`` fed from the shards (see module docstring).

    Args:
        learner: the ``Learner`` (its ``stage``, ``beta`` and ``learner_steps`` are used).
        replay: the shards.
        cfg: the learner's config.
        replay_cfg: the replay's config.
        rng: picks shards.
        timer: the learner's phase timer (``sampling`` counts waits for batches,
            ``priorities`` the sending of priorities).
        samples_per_update: batch size times the number of learners (the ratio gate's unit).
    """

    def __init__(
        self,
        learner: LearnerComponent,
        *,
        replay: ReplayPort,
        cfg: LearnerConfig,
        replay_cfg: ReplayConfig,
        rng: np.random.Generator,
        timer: PhaseTimer,
        samples_per_update: int,
    ) -> None:
        self.learner = learner
        self.replay = replay
        self.cfg = cfg
        self._min_size = replay_cfg.min_size_to_learn
        self.rng = rng
        self._timer = timer
        self.book = ShardBook(replay.num_shards)
        self.gate = ReplayRatioGate(cfg.max_replay_ratio, samples_per_update)
        self._samples_per_update = samples_per_update
        self._inflight: dict[Any, int] = {}  # ticket -> shard
        self._staged: deque[FedBatch] = deque()
        # Two threads: host copies of consecutive batches overlap (numpy releases the GIL).
        self._stager = ThreadPoolExecutor(2, "stage") if learner.stages_async else None
        self.last_refresh = time.monotonic()

    def batches(self, deadline: float, *, until_idle: bool = False) -> Iterator[FedBatch]:
        """The next staged batches, one at a time, until ``deadline`` (``time.monotonic``).

        Between two batches, requests are sent up to ``learner.prefetch`` in flight, and the
        next request's batches are staged while the current one's are learned from. With
        nothing staged it waits for a request, up to the deadline. With nothing in flight and
        no request allowed, it refreshes the shards' statistics and sleeps a moment, or ends at
        once with ``until_idle`` (one process, where the actors act only between learner calls).
        Call ``learned`` after the update on each batch.
        """
        k = self.cfg.batches_per_request
        while time.monotonic() < deadline:
            self._fill()
            if self._staged:
                if len(self._staged) <= k:  # stage the next request's batches meanwhile
                    self._poll()
                yield self._staged.popleft()
                continue
            if not self._inflight:
                self.refresh_stats()
                if not self._request():
                    if until_idle:
                        return
                    time.sleep(IDLE_SLEEP_S)
                continue
            ticket = self._wait_ready(max(0.0, deadline - time.monotonic()))
            if ticket is None:
                return
            self._receive(ticket)

    def rounds(self) -> Iterator[FedBatch | None]:
        """For a learner of a group: what it brings to each collective round, without end.

        The oldest staged batch, or None when none is staged now. Waits are short (at most
        ``ROUND_WAIT_S``), since the other learners wait in the round for this one. Call
        ``learned`` after the update on each batch.
        """
        k = self.cfg.batches_per_request
        while True:
            self._fill()
            if self._inflight and len(self._staged) <= k:
                ticket = self._wait_ready(0.0 if self._staged else ROUND_WAIT_S)
                if ticket is not None:
                    self._receive(ticket)
            elif not self._inflight and not self._staged:
                self.refresh_stats()
                if not self._request():
                    time.sleep(IDLE_SLEEP_S)
            yield self._staged.popleft() if self._staged else None

    def learned(self, item: FedBatch, priorities_B: np.ndarray) -> None:
        """After an update on ``item``: when it was its request's last batch, send the
        request's priorities back in one call."""
        with self._timer.phase("priorities"):
            request = item.request
            request.ids.append(item.ids_B)
            request.priorities.append(priorities_B)
            request.left -= 1
            if request.left == 0:
                self.replay.update_priorities(
                    request.shard, np.concatenate(request.ids), np.concatenate(request.priorities)
                )

    def refresh_stats(self) -> None:
        """Ask every shard for its statistics (a shard that is not sampled, one that came
        back empty say, would otherwise keep its old size)."""
        self.last_refresh = time.monotonic()
        tickets = [self.replay.stats(s) for s in range(self.replay.num_shards)]
        for shard, ticket in enumerate(tickets):
            try:
                self.book.answered(shard, stats_of(self.replay, ticket, STATS_TIMEOUT_S))
            except ShardDown:
                self.book.failed(shard)

    def refresh_if_stale(self) -> None:
        """``refresh_stats`` when a shard is down or the last refresh is a second old."""
        if self.book.down or time.monotonic() - self.last_refresh >= 1.0:
            self.refresh_stats()

    def rebase(self, grace: int) -> None:
        """After a restore: the ratio gate counts from here, with ``grace`` slack."""
        self.refresh_stats()
        self.gate.rebase(self.learner.learner_steps, self.book.total_added(), grace)

    def _request(self) -> bool:
        """Submit one sample request if the replay is ready and the gate open; True if sent."""
        if self.book.total_size() < self._min_size:
            return False
        k = self.cfg.batches_per_request
        steps = self.learner.learner_steps + len(self._staged) + k * (len(self._inflight) + 1)
        if not self.gate.allows(steps, self.book.total_added()):
            return False
        shard = self.book.pick(self.cfg.batch_size, self.rng)
        if shard is None:
            return False
        ticket = self.replay.sample_many(shard, self.cfg.batch_size, self.learner.beta(), k)
        self._inflight[ticket] = shard
        return True

    def _fill(self) -> None:
        """Send requests until ``learner.prefetch`` are in flight or none may be sent."""
        while len(self._inflight) < self.cfg.prefetch and self._request():
            pass

    def _wait_ready(self, timeout: float) -> Any | None:
        """A finished request within ``timeout`` seconds (counted as sampling), or None."""
        if not self._inflight:
            return None
        with self._timer.phase("sampling"):
            ready = self.replay.wait(list(self._inflight), num_returns=1, timeout=timeout)
        return ready[0] if ready else None

    def _poll(self) -> None:
        """Take a request that has finished, without waiting (stages it)."""
        if self._inflight:
            ready = self.replay.wait(list(self._inflight), num_returns=1, timeout=0)
            if ready:
                self._receive(ready[0])

    def _receive(self, ticket: Any) -> None:
        """Take a finished sample request and stage its batches (in the staging threads when
        the learner stages asynchronously)."""
        shard = self._inflight.pop(ticket)
        try:
            samples = samples_of(self.replay, ticket)
        except ShardDown:
            self.book.failed(shard)
            return
        for sample in samples:
            self.book.answered(shard, sample.stats)
        request = _Request(shard=shard, left=len(samples))
        for sample in samples:
            weights_B = sample.weights_B
            future: Future = Future()
            if self._stager is not None:
                future = self._stager.submit(self.learner.stage, sample.batch, weights_B)
            else:
                future.set_result(self.learner.stage(sample.batch, weights_B))
            self._staged.append(FedBatch(request, sample.ids_B, weights_B, future))

    def close(self) -> None:
        """Stop the staging threads (a learner that runs in the caller's process)."""
        if self._stager is not None:
            self._stager.shutdown(wait=True, cancel_futures=True)
            self._stager = None

    def totals(self) -> ReplayTotals:
        """Replay totals for a report."""
        return self.book.totals(sampled=self.learner.learner_steps * self._samples_per_update)
