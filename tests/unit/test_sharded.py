"""Exact prioritized replay across shards, through the functions the learners really use."""

from __future__ import annotations

import numpy as np

from apex_dqn.core.types import TransitionBatch
from apex_dqn.replay import sharded
from apex_dqn.replay.prioritized import PrioritizedReplay


def _batch(values: np.ndarray, priorities: np.ndarray) -> TransitionBatch:
    n = len(values)
    return TransitionBatch(
        obs_B=values.reshape(n, 1).astype(np.float32),
        action_B=np.zeros(n, np.int64),
        return_B=np.zeros(n, np.float32),
        discount_B=np.ones(n, np.float32),
        next_obs_B=values.reshape(n, 1).astype(np.float32),
        done_B=np.zeros(n, bool),
        priority_B=priorities.astype(np.float32),
    )


def _shards(alpha: float = 0.6) -> tuple[list[PrioritizedReplay], np.ndarray]:
    """Four shards of different sizes holding items 0..39; returns the shards and p of each."""
    rng = np.random.default_rng(1)
    priorities = rng.uniform(0.1, 3.0, size=40)
    sizes = [4, 8, 12, 16]
    shards, start = [], 0
    for i, size in enumerate(sizes):
        shard = PrioritizedReplay(capacity=32, obs_shape=(1,), alpha=alpha, seed=10 + i)
        items = np.arange(start, start + size)
        shard.add(_batch(items.astype(float), priorities[items]))
        shards.append(shard)
        start += size
    return shards, priorities


def test_item_frequencies_match_global_priorities():
    shards, priorities = _shards()
    rng = np.random.default_rng(0)
    stats = [s.stats() for s in shards]
    counts = np.zeros(40)
    draws = 0
    # Batches of 4: each shard holds at least that many, so every shard can be picked.
    for _ in range(12_000):
        k = sharded.pick_shard(stats, 4, rng)
        sample = shards[k].sample(4, beta=0.4)
        np.add.at(counts, sample.batch.obs_B[:, 0].astype(int), 1)
        draws += 4
    expected = priorities**0.6 / (priorities**0.6).sum()
    freq = counts / draws
    # Items of one batch share a shard, so counts are correlated: allow 5 standard errors of a
    # batch-level draw (n = number of batches) rather than of independent items.
    se = np.sqrt(expected * (1 - expected) / 12_000)
    assert np.all(np.abs(freq - expected) < 5 * se + 1e-3), np.max(np.abs(freq - expected) / se)
    # A wrong rule (picking shards uniformly) would be far off for items of the small shard.
    uniform_pick = priorities[:4] ** 0.6 / (priorities[:4] ** 0.6).sum() / 4
    assert np.abs(freq[:4] - uniform_pick).max() > 0.01


def test_shard_weights_equal_those_of_one_big_buffer():
    shards, priorities = _shards()
    one = PrioritizedReplay(capacity=64, obs_shape=(1,), alpha=0.6, seed=0)
    one.add(_batch(np.arange(40.0), priorities))
    sample = shards[2].sample(8, beta=0.7)
    big = one.stats()
    # By hand: w_i = (N * P(i)) ** -beta with P(i) = p_i / S over the one buffer, normalized
    # by the largest in the batch.
    p = priorities**0.6
    idx = sample.batch.obs_B[:, 0].astype(int)
    w = (big.size * p[idx] / big.priority_sum) ** -0.7
    np.testing.assert_allclose(sample.weights_B, w / w.max(), rtol=1e-5)


def test_pick_shard_skips_shards_that_cannot_fill_a_batch():
    shards, _ = _shards()
    stats = [s.stats() for s in shards]
    rng = np.random.default_rng(0)
    picks = {sharded.pick_shard(stats, 10, rng) for _ in range(200)}
    assert picks == {2, 3}
    assert sharded.pick_shard([None, None], 1, rng) is None


def test_totals():
    shards, _ = _shards()
    stats = [s.stats() for s in shards]
    assert sharded.total_size(stats) == 40
    assert sharded.totals(stats).capacity == 128
