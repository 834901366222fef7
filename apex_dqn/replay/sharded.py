"""Exact prioritized replay across shards: which shard to sample from.

Each batch is drawn from one shard s picked with probability S_s / S (S_s its priority sum, S the
sum over shards); within the shard item i is drawn with probability p_i / S_s, so its marginal
probability is p_i / S, as if all shards were one buffer. Importance weights, normalized within
each batch, are then those of the one buffer too (``prioritized.importance_weights``). Pure
numpy: the learner's shard book (``roles.shard_book``) uses it.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from apex_dqn.core.types import ReplayStats, ReplayTotals, ShardSize


def pick_shard(
    stats: Sequence[ReplayStats | None], batch_size: int, rng: np.random.Generator
) -> int | None:
    """A shard index drawn proportionally to priority sums (shards with < batch_size excluded)."""
    sums = np.array(
        [s.priority_sum if s is not None and s.size >= batch_size else 0.0 for s in stats]
    )
    total = sums.sum()
    if total <= 0:
        return None
    return int(rng.choice(len(sums), p=sums / total))


def total_size(stats: Sequence[ReplayStats | None]) -> int:
    """Transitions held by all shards together."""
    return sum(s.size for s in stats if s is not None)


def totals(stats: Sequence[ReplayStats | None]) -> ReplayTotals:
    """Size, capacity, added, sampled and bytes summed over the shards that reported, how many
    did, and each shard's size, capacity and bytes (None while it is down)."""
    known = [s for s in stats if s is not None]
    return ReplayTotals(
        size=sum(s.size for s in known),
        capacity=sum(s.capacity for s in known),
        added=sum(s.added for s in known),
        sampled=sum(s.sampled for s in known),
        bytes=sum(s.bytes for s in known),
        shards=len(known),
        per_shard=[
            None if s is None else ShardSize(size=s.size, capacity=s.capacity, bytes=s.bytes)
            for s in stats
        ],
    )
