"""What a learner knows of the replay shards: their latest statistics, which are down, and
the inserts they made across their restarts.

With several shards a batch comes from one shard chosen with probability proportional to its
priority sum, so that the marginal sampling probability of item i is p_i / (sum over all
shards): exact prioritized replay across shards (``replay.sharded``).
"""

from __future__ import annotations

import dataclasses

import numpy as np

from apex_dqn.core.rules import IdentityWatch
from apex_dqn.core.types import ReplayStats, ReplayTotals
from apex_dqn.replay import sharded


class ShardBook:
    """Per-shard health and counters of one learner process (see module docstring).

    A shard whose call failed is *down* (left out of sampling) until it answers again. A shard
    that answers with a new replay instance id was restarted (it came back empty or from its
    snapshot), whether or not one of our calls failed: its insert counter starts again, and
    the inserts of its earlier life are kept in an offset.
    """

    def __init__(self, num_shards: int) -> None:
        self.stats: list[ReplayStats | None] = [None] * num_shards
        self.down: set[int] = set()
        self.failures = 0
        self.restarts = 0
        self._last_added: list[int | None] = [None] * num_shards
        self._added_offset = [0] * num_shards
        self._instances = IdentityWatch()

    def failed(self, shard: int) -> None:
        """A call to ``shard`` failed: leave it out until it answers again."""
        if shard not in self.down:
            self.failures += 1
        self.down.add(shard)
        self.stats[shard] = None

    def answered(self, shard: int, stats: ReplayStats) -> None:
        """Record ``shard``'s statistics (an older report arriving after a newer one of the
        same shard instance is ignored)."""
        self.down.discard(shard)
        last = self._last_added[shard]
        if self._instances.restarted(shard, stats.instance):
            self.restarts += 1
            self._added_offset[shard] += last or 0  # inserts of its earlier life still count
            last = None
        elif last is not None and stats.added < last:
            return
        self._last_added[shard] = stats.added
        self.stats[shard] = stats

    def total_added(self) -> int:
        """Transitions inserted into all shards, across shard restarts (the last known counts
        for shards that are down)."""
        return sum(
            offset + (last or 0)
            for offset, last in zip(self._added_offset, self._last_added, strict=True)
        )

    def total_size(self) -> int:
        """Transitions the shards that are up hold."""
        return sharded.total_size(self.stats)

    def pick(self, batch_size: int, rng: np.random.Generator) -> int | None:
        """A shard to sample from, proportionally to priority sums (None: none can serve)."""
        return sharded.pick_shard(self.stats, batch_size, rng)

    def totals(self, sampled: int) -> ReplayTotals:
        """The replay totals of a report: ``sharded.totals`` with ``added`` across restarts and
        ``sampled`` as given (the learners' draws)."""
        return dataclasses.replace(
            sharded.totals(self.stats), added=self.total_added(), sampled=sampled
        )
