"""The learner's sample feeder: sample requests kept in flight, batches staged ahead of the
updates, and their new priorities routed back to the shards they came from.

A request asks one shard (``ShardBook.pick``) for ``learner.batches_per_request`` batches at
once; when the last of them has been learned from, their priorities go back in one call. At
most ``learner.prefetch`` requests are in flight, and none is sent while the replay holds less
than ``replay.min_size_to_learn`` or the replay-ratio gate is closed.
"""

from __future__ import annotations

import time
from collections import deque
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from apex_dqn.config import LearnerConfig, ReplayConfig
from apex_dqn.core.rules import PhaseTimer, ReplayRatioGate
from apex_dqn.roles.ports import ReplayPort, ShardDown, samples_of, stats_of
from apex_dqn.roles.shard_book import ShardBook

STATS_TIMEOUT_S = 5.0


@dataclass
class _Request:
    """A sample request whose batches are being learned from."""

    shard: int
    left: int
    ids: list[np.ndarray] = field(default_factory=list)
    priorities: list[np.ndarray] = field(default_factory=list)


@dataclass
class Staged:
    """One batch on its way to an update: its request, ids, weights and the staging result."""

    request: _Request
    ids_B: np.ndarray
    future: Future
    weights_B: np.ndarray


class SampleFeeder:
    """Keeps a ``Learner`` fed from the shards (see module docstring).

    Args:
        learner: the ``Learner`` (its ``stage``, ``beta`` and ``learner_steps`` are used).
        replay: the shards.
        cfg: the learner's config.
        replay_cfg: the replay's config.
        rng: picks shards.
        timer: the learner's phase timer (``sampling`` counts waits for batches).
        samples_per_update: batch size times the number of learners (the ratio gate's unit).
    """

    def __init__(
        self,
        learner: Any,
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
        self.inflight: dict[Any, int] = {}  # ticket -> shard
        self.staged: deque[Staged] = deque()
        # Two threads: host copies of consecutive batches overlap (numpy releases the GIL).
        self._stager = ThreadPoolExecutor(2, "stage") if learner.stages_async else None
        self.last_refresh = time.monotonic()

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

    def request(self) -> bool:
        """Submit one sample request if the replay is ready and the gate open; True if sent."""
        if self.book.total_size() < self._min_size:
            return False
        k = self.cfg.batches_per_request
        steps = self.learner.learner_steps + len(self.staged) + k * (len(self.inflight) + 1)
        if not self.gate.allows(steps, self.book.total_added()):
            return False
        shard = self.book.pick(self.cfg.batch_size, self.rng)
        if shard is None:
            return False
        ticket = self.replay.sample_many(shard, self.cfg.batch_size, self.learner.beta(), k)
        self.inflight[ticket] = shard
        return True

    def fill(self) -> None:
        """Send requests until ``learner.prefetch`` are in flight or none may be sent."""
        while len(self.inflight) < self.cfg.prefetch and self.request():
            pass

    def wait_ready(self, timeout: float) -> Any | None:
        """A finished request within ``timeout`` seconds (counted as sampling), or None."""
        if not self.inflight:
            return None
        with self._timer.phase("sampling"):
            ready = self.replay.wait(list(self.inflight), num_returns=1, timeout=timeout)
        return ready[0] if ready else None

    def poll(self) -> None:
        """Take a request that has finished, without waiting (stages it)."""
        if self.inflight:
            ready = self.replay.wait(list(self.inflight), num_returns=1, timeout=0)
            if ready:
                self.receive(ready[0])

    def receive(self, ticket: Any) -> None:
        """Take a finished sample request and stage its batches."""
        shard = self.inflight.pop(ticket)
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
            self.staged.append(Staged(request, sample.ids_B, future, weights_B))

    def learned(self, item: Staged, priorities_B: np.ndarray) -> None:
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

    def close(self) -> None:
        """Stop the staging threads (a learner that runs in the caller's process)."""
        if self._stager is not None:
            self._stager.shutdown(wait=True, cancel_futures=True)
            self._stager = None

    def totals(self) -> dict[str, Any]:
        """Replay totals for a report."""
        return self.book.totals(sampled=self.learner.learner_steps * self._samples_per_update)
