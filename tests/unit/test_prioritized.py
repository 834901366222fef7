"""Tests for one prioritized replay shard and for exact sampling across several shards."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from apex_dqn.core.types import BEHAVIOUR_FIELDS, TransitionBatch
from apex_dqn.replay import PrioritizedReplay, importance_weights

OBS_SHAPE = (4,)


def _chi2_critical(df: int, z: float = 3.29) -> float:
    """Upper quantile of chi-square(df) (Wilson-Hilferty); z = 3.29 is about p = 0.0005."""
    k = 2.0 / (9.0 * df)
    return df * (1.0 - k + z * np.sqrt(k)) ** 3


def _chi2(counts_K: np.ndarray, probs_K: np.ndarray) -> float:
    expected_K = probs_K * counts_K.sum()
    return float(((counts_K - expected_K) ** 2 / expected_K).sum())


def _batch(start: int, priority_B: np.ndarray | list[float]) -> TransitionBatch:
    """Rows whose fields all encode their insertion number start, start + 1, ..."""
    priority_B = np.asarray(priority_B, dtype=np.float32)
    n = priority_B.shape[0]
    num_B = np.arange(start, start + n)
    obs_B4 = np.repeat(num_B[:, None], 4, axis=1).astype(np.float32)
    return TransitionBatch(
        obs_B=obs_B4,
        action_B=num_B.astype(np.int64),
        return_B=num_B.astype(np.float32),
        discount_B=np.full(n, 0.99, dtype=np.float32),
        next_obs_B=obs_B4 + 0.5,
        done_B=num_B % 2 == 0,
        priority_B=priority_B,
        greedy_B=num_B % 3 == 0,
        epsilon_B=np.full(n, 0.1, dtype=np.float32),
        steps_B=(1 + num_B % 5).astype(np.uint8),
        later_greedy_B=(num_B % 5 // 2).astype(np.uint8),
    )


def _replay(capacity: int, **kwargs: float) -> PrioritizedReplay:
    """A replay of ``_batch``es, which carry the behaviour fields."""
    return PrioritizedReplay(capacity=capacity, obs_shape=OBS_SHAPE, behaviour=True, **kwargs)


def test_importance_weights_hand_computed() -> None:
    p_B = np.array([2.0, 4.0, 8.0])
    # (min_batch p / p_i) ** beta, min_batch p = 2: beta .5 -> [1, .5 ** .5, .25 ** .5].
    w_B = importance_weights(p_B, beta=0.5)
    assert w_B.dtype == np.float32
    np.testing.assert_allclose(w_B, [1.0, 0.70710678, 0.5], rtol=1e-6)
    np.testing.assert_allclose(importance_weights(p_B, beta=1.0), [1.0, 0.5, 0.25], rtol=1e-6)
    np.testing.assert_array_equal(importance_weights(p_B, beta=0.0), [1.0, 1.0, 1.0])
    with pytest.raises(ValueError):
        importance_weights(np.array([1.0, 0.0]), beta=0.5)
    with pytest.raises(ValueError):
        importance_weights(p_B, beta=-0.1)


def test_one_tiny_priority_does_not_shrink_every_weight() -> None:
    """A near-zero priority elsewhere in the replay leaves a batch's weights untouched: the
    largest weight of every batch is 1, whatever the replay's minimum."""
    replay = _replay(64, alpha=0.6, priority_eps=1e-6, seed=3)
    replay.add(_batch(0, np.concatenate([np.full(63, 0.5), [0.0]])))  # one floored at 1e-6
    assert replay.stats().priority_min == pytest.approx(1e-6**0.6)
    sample = replay.sample(32, beta=1.0)
    assert sample.weights_B.max() == pytest.approx(1.0)
    assert sample.weights_B.mean() > 0.5


def test_priorities_stored_as_floored_power() -> None:
    replay = _replay(8, alpha=0.5, priority_eps=0.01)
    replay.add(_batch(0, [0.0, -4.0, 9.0]))
    stats = replay.stats()
    # max(|p|, eps) ** 0.5 = [0.1, 2, 3]
    assert stats.priority_sum == pytest.approx(5.1)
    assert stats.priority_min == pytest.approx(0.1)
    assert (stats.size, stats.added, stats.capacity) == (3, 3, 8)


def test_non_finite_priorities_get_current_max() -> None:
    replay = _replay(8, alpha=0.5)
    replay.add(_batch(0, [np.nan]))  # empty: 1.0
    assert replay.stats().priority_sum == pytest.approx(1.0)
    replay.add(_batch(1, [16.0]))  # 4.0
    replay.add(_batch(2, [np.inf, np.nan, 1.0]))  # 4.0, 4.0, 1.0
    assert replay.stats().priority_sum == pytest.approx(1.0 + 4.0 + 4.0 + 4.0 + 1.0)


def test_sample_weights_and_priorities() -> None:
    replay = _replay(16, alpha=1.0)
    replay.add(_batch(0, [1.0, 2.0, 3.0, 4.0]))
    sample = replay.sample(64, beta=0.4)
    assert sample.ids_B.dtype == np.int64 and sample.weights_B.dtype == np.float32
    np.testing.assert_array_equal(sample.priorities_B, sample.ids_B + 1.0)
    # (N P(i)) ** -beta / max_j w_j = (min_j p_j / p_i) ** beta, j over the batch.
    p_B = sample.ids_B + 1.0
    np.testing.assert_allclose(sample.weights_B, (p_B.min() / p_B) ** 0.4, rtol=1e-6)
    np.testing.assert_array_equal(sample.batch.action_B, sample.ids_B)
    assert sample.stats.sampled == 64 and sample.stats.size == 4


def test_sample_returns_copies_and_rejects_empty() -> None:
    replay = _replay(4)
    with pytest.raises(ValueError):
        replay.sample(2, beta=0.4)
    replay.add(_batch(0, [1.0, 1.0]))
    sample = replay.sample(4, beta=0.4)
    sample.batch.obs_B[:] = -1.0
    assert np.all(replay.sample(4, beta=0.4).batch.obs_B >= 0.0)


def _ids_held(replay: PrioritizedReplay) -> np.ndarray:
    """The ids drawn by a large stratified sample (every item, for priorities within 10x)."""
    sample = replay.sample(20 * len(replay), beta=0.4)
    np.testing.assert_array_equal(sample.batch.obs_B[:, 0], sample.ids_B)
    np.testing.assert_array_equal(sample.batch.action_B, sample.ids_B)
    return np.unique(sample.ids_B)


def test_fifo_eviction_with_wrap_around() -> None:
    replay = _replay(8)
    replay.add(_batch(0, np.ones(5)))
    replay.add(_batch(5, np.ones(6)))  # wraps: ids 8, 9, 10 overwrite slots 0, 1, 2
    stats = replay.stats()
    assert (len(replay), stats.size, stats.added) == (8, 8, 11)
    np.testing.assert_array_equal(_ids_held(replay), np.arange(3, 11))
    assert stats.priority_sum == pytest.approx(8.0)
    # Equal priorities and stratified sampling: each of the 8 items exactly 5 times in 40.
    ids_B = replay.sample(40, beta=0.4).ids_B
    np.testing.assert_array_equal(np.bincount(ids_B, minlength=11), [0] * 3 + [5] * 8)


def test_batch_larger_than_capacity_keeps_the_last_rows() -> None:
    replay = _replay(4, alpha=1.0)
    replay.add(_batch(0, np.arange(1.0, 11.0)))  # ids 0..9, only 6..9 survive
    assert replay.stats().added == 10
    np.testing.assert_array_equal(_ids_held(replay), np.arange(6, 10))
    assert replay.stats().priority_sum == pytest.approx(7.0 + 8.0 + 9.0 + 10.0)
    replay.add(_batch(10, [1.0]))  # id 10 -> slot 2, evicting id 6
    np.testing.assert_array_equal(_ids_held(replay), np.arange(7, 11))


def test_stale_updates_ignored_fresh_applied() -> None:
    replay = _replay(4, alpha=1.0)
    replay.add(_batch(0, np.ones(4)))
    ids_B = replay.sample(8, beta=0.4).ids_B
    np.testing.assert_array_equal(np.unique(ids_B), [0, 1, 2, 3])
    replay.add(_batch(4, np.ones(2)))  # ids 4, 5 overwrite the slots of ids 0, 1
    applied = replay.update_priorities(ids_B, np.full(ids_B.shape, 10.0))
    assert applied == 2
    assert replay.stats().priority_sum == pytest.approx(1.0 + 1.0 + 10.0 + 10.0)
    # Never-added, negative and non-finite entries are ignored too.
    applied = replay.update_priorities(np.array([6, -1, 4, 5]), np.array([3.0, 3.0, np.nan, 2.0]))
    assert applied == 1
    assert replay.stats().priority_sum == pytest.approx(1.0 + 2.0 + 10.0 + 10.0)


def test_duplicate_update_last_wins() -> None:
    replay = _replay(4, alpha=1.0)
    replay.add(_batch(0, np.ones(4)))
    applied = replay.update_priorities(np.array([2, 1, 2]), np.array([5.0, 3.0, 7.0]))
    assert applied == 2
    assert replay.stats().priority_sum == pytest.approx(1.0 + 3.0 + 7.0 + 1.0)


def test_sampling_frequency_proportional_to_p_alpha() -> None:
    p_K = np.array([0.0, 1.0, 2.0, 3.0, 5.0, 8.0, 13.0])
    replay = _replay(10, alpha=0.6, priority_eps=0.5, seed=7)
    replay.add(_batch(0, p_K))
    counts_K = np.zeros(p_K.size, dtype=np.int64)
    for _ in range(200):
        counts_K += np.bincount(replay.sample(256, beta=0.4).ids_B, minlength=p_K.size)
    want_K = np.maximum(p_K, 0.5) ** 0.6
    assert _chi2(counts_K, want_K / want_K.sum()) < _chi2_critical(p_K.size - 1)
    assert counts_K.sum() == replay.stats().sampled


def test_state_round_trip_gives_identical_samples() -> None:
    rng = np.random.default_rng(8)
    replay = _replay(16, alpha=0.6, seed=3)
    replay.add(_batch(0, rng.uniform(0.1, 3.0, size=20)))  # wrapped
    replay.sample(8, beta=0.4)
    state = replay.state_dict()
    _assert_plain(state)
    restored = _replay(16, alpha=0.6, seed=99)
    restored.load_state_dict(state)
    # Same contents and counters; a restored replay is a new instance (its own id).
    assert dataclasses.replace(restored.stats(), instance=0) == dataclasses.replace(
        replay.stats(), instance=0
    )
    assert restored.stats().instance != replay.stats().instance
    for _ in range(3):
        a, b = replay.sample(32, beta=0.5), restored.sample(32, beta=0.5)
        np.testing.assert_array_equal(a.ids_B, b.ids_B)
        np.testing.assert_array_equal(a.weights_B, b.weights_B)
        for name, array in a.batch.arrays().items():
            np.testing.assert_array_equal(array, getattr(b.batch, name))
    # The state is a snapshot: later adds to the source do not change it.
    replay.add(_batch(20, np.ones(4)))
    assert state["added"] == 20 and state["storage"]["action_B"][4] == 4
    with pytest.raises(ValueError):
        _replay(32, alpha=0.6).load_state_dict(state)


def test_sample_returns_steps_and_later_greedy_as_stored() -> None:
    replay = _replay(16, alpha=1.0)
    replay.add(_batch(0, np.arange(1.0, 11.0)))
    batch = replay.sample(64, beta=0.4).batch
    ids_B = batch.action_B  # _batch encodes the insertion number in action_B
    assert batch.steps_B.dtype == np.uint8 and batch.later_greedy_B.dtype == np.uint8
    np.testing.assert_array_equal(batch.steps_B, 1 + ids_B % 5)
    np.testing.assert_array_equal(batch.later_greedy_B, ids_B % 5 // 2)


def test_snapshot_file_keeps_steps_and_later_greedy(tmp_path) -> None:
    from apex_dqn.replay.snapshot import load_snapshot, save_snapshot

    replay = _replay(16, alpha=0.6, seed=3)
    replay.add(_batch(0, np.linspace(0.5, 2.0, 12)))
    path = save_snapshot(tmp_path / "shard.npz", replay.state_dict())
    restored = _replay(16, alpha=0.6, seed=3)
    restored.load_state_dict(load_snapshot(path))
    a, b = replay.sample(32, beta=0.4), restored.sample(32, beta=0.4)
    np.testing.assert_array_equal(a.ids_B, b.ids_B)
    np.testing.assert_array_equal(b.batch.steps_B, 1 + b.ids_B % 5)
    np.testing.assert_array_equal(b.batch.later_greedy_B, b.ids_B % 5 // 2)
    assert b.batch.steps_B.dtype == np.uint8


def test_a_snapshot_without_behaviour_fields_loads_with_zeros_and_back() -> None:
    """A run resumed with learner.actor_correction switched on or off: the replay stores what
    the option needs from now on; rows saved without the fields get zeros (steps 0: the actor
    correction weighs them 1), rows saved with them lose them."""
    plain = PrioritizedReplay(capacity=8, obs_shape=OBS_SHAPE)
    plain.add(_without_behaviour(_batch(0, np.ones(5))))
    restored = _replay(8)
    restored.load_state_dict(plain.state_dict())
    batch = restored.sample(16, beta=0.4).batch
    for name in BEHAVIOUR_FIELDS:
        np.testing.assert_array_equal(getattr(batch, name), 0)
    np.testing.assert_array_equal(batch.obs_B[:, 0], batch.action_B)  # the rows themselves
    back = PrioritizedReplay(capacity=8, obs_shape=OBS_SHAPE)
    back.load_state_dict(restored.state_dict())
    assert not back.sample(4, beta=0.4).batch.has_behaviour


def test_a_replay_refuses_a_batch_whose_fields_it_does_not_store() -> None:
    with pytest.raises(ValueError, match="actor_correction"):
        PrioritizedReplay(capacity=8, obs_shape=OBS_SHAPE).add(_batch(0, np.ones(3)))
    with pytest.raises(ValueError, match="actor_correction"):
        _replay(8).add(_without_behaviour(_batch(0, np.ones(3))))


def _without_behaviour(batch: TransitionBatch) -> TransitionBatch:
    return dataclasses.replace(batch, **dict.fromkeys(BEHAVIOUR_FIELDS))


def _assert_plain(value: object) -> None:
    """Only dicts, lists, numpy arrays, ints, floats and strings (torch weights_only-friendly)."""
    if isinstance(value, dict):
        for key, item in value.items():
            assert isinstance(key, str)
            _assert_plain(item)
    elif isinstance(value, list):
        for item in value:
            _assert_plain(item)
    else:
        assert type(value) in (np.ndarray, int, float, str), type(value)


def test_sharded_sampling_matches_one_buffer() -> None:
    """A learner picking shard s with prob S_s / S draws item i with prob p_i / S overall."""
    num_shards, per_shard, batch_size, num_batches, beta = 4, 16, 32, 1500, 0.4
    rng = np.random.default_rng(9)
    p_SK = rng.uniform(0.1, 5.0, size=(num_shards, per_shard))
    shards = [_replay(per_shard, alpha=0.6, seed=s) for s in range(num_shards)]
    for shard, p_K in zip(shards, p_SK, strict=True):
        shard.add(_batch(0, p_K))
    single = _replay(num_shards * per_shard, alpha=0.6, seed=10)
    single.add(_batch(0, p_SK.reshape(-1)))  # global item g = s * per_shard + i
    stats = [shard.stats() for shard in shards]
    sums_S = np.array([s.priority_sum for s in stats])
    assert sums_S.sum() == pytest.approx(single.stats().priority_sum, rel=1e-12)
    total, size = single.stats().priority_sum, single.stats().size
    p_G = p_SK.reshape(-1) ** 0.6
    picks_S = np.zeros(num_shards, dtype=np.int64)
    counts_G = np.zeros(num_shards * per_shard, dtype=np.int64)
    for _ in range(num_batches):
        s = int(rng.choice(num_shards, p=sums_S / sums_S.sum()))
        picks_S[s] += 1
        sample = shards[s].sample(batch_size, beta=beta)
        global_B = s * per_shard + sample.ids_B
        counts_G += np.bincount(global_B, minlength=counts_G.size)
        # The one buffer's IS weights (N P(i)) ** -beta, P(i) = p_i / S, normalized within
        # the batch, are the shard's own weights.
        w_B = (size * p_G[global_B] / total) ** -beta
        np.testing.assert_allclose(sample.weights_B, w_B / w_B.max(), rtol=1e-5)
    shard_prob_S = sums_S / sums_S.sum()
    assert _chi2(picks_S, shard_prob_S) < _chi2_critical(num_shards - 1)
    # Marginal frequency of item i vs p_i / S. Its error comes mostly from the shard choice
    # (whole batches of 32 move together): sd ~ q_i * sd(batch share of shard s), q_i = p_i / S_s.
    want_G = p_SK.reshape(-1) ** 0.6 / sums_S.sum()
    q_G = want_G / np.repeat(shard_prob_S, per_shard)
    pick_sd_G = np.repeat(np.sqrt(shard_prob_S * (1 - shard_prob_S) / num_batches), per_shard)
    draw_sd_G = np.sqrt(want_G * (1 - want_G) / counts_G.sum())
    freq_G = counts_G / counts_G.sum()
    assert np.all(np.abs(freq_G - want_G) < 4.5 * (q_G * pick_sd_G + draw_sd_G))


def test_obs_dtype_and_shape_checked() -> None:
    replay = PrioritizedReplay(capacity=4, obs_shape=(2, 3), obs_dtype=np.uint8)
    batch = TransitionBatch.empty((2, 3), np.uint8)
    replay.add(batch)  # empty batch: no-op
    assert len(replay) == 0 and replay.stats().priority_min == np.inf
    with pytest.raises(ValueError):
        replay.add(_batch(0, [1.0]))  # obs of shape (4,)
    rows = TransitionBatch(
        **{k: np.zeros((3, *v.shape[1:]), v.dtype) for k, v in batch.arrays().items()}
    )
    rows.obs_B[:] = 255
    replay.add(rows)
    sample = replay.sample(3, beta=1.0)
    assert sample.batch.obs_B.dtype == np.uint8 and np.all(sample.batch.obs_B == 255)
    assert replay.stats().bytes > 4 * 2 * 6
