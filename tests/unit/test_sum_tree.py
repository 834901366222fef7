"""Golden and statistical tests for the vectorized sum tree / min tree."""

from __future__ import annotations

import numpy as np
import pytest

from apex_dqn.replay.sum_tree import SumTree


def _chi2_critical(df: int, z: float = 3.29) -> float:
    """Upper quantile of chi-square(df) (Wilson-Hilferty); z = 3.29 is about p = 0.0005."""
    k = 2.0 / (9.0 * df)
    return df * (1.0 - k + z * np.sqrt(k)) ** 3


def _chi2(counts_K: np.ndarray, probs_K: np.ndarray) -> float:
    expected_K = probs_K * counts_K.sum()
    return float(((counts_K - expected_K) ** 2 / expected_K).sum())


def test_total_min_and_get_after_updates() -> None:
    tree = SumTree(5)
    tree.update(np.array([0, 2, 4]), np.array([1.0, 2.0, 3.0]))
    assert tree.total() == 6.0
    assert tree.min() == 1.0
    tree.update(np.array([0]), np.array([5.0]))
    assert tree.total() == 10.0
    assert tree.min() == 2.0
    np.testing.assert_array_equal(tree.get(np.array([0, 1, 2, 3, 4])), [5.0, 0.0, 2.0, 0.0, 3.0])


def test_duplicate_indices_last_write_wins() -> None:
    tree = SumTree(4)
    tree.update(np.array([1, 3, 1, 1, 3]), np.array([5.0, 2.0, 7.0, 4.0, 6.0]))
    np.testing.assert_array_equal(tree.get(np.array([1, 3])), [4.0, 6.0])
    assert tree.total() == 10.0
    assert tree.min() == 4.0


def test_min_ignores_unset_leaves() -> None:
    tree = SumTree(6)
    assert tree.min() == np.inf
    assert tree.total() == 0.0
    tree.update(np.array([3]), np.array([3.0]))
    # Unset leaves (and padding leaves 6, 7) hold 0 in the sum tree but must not be the min.
    assert tree.min() == 3.0
    assert tree.max() == 3.0


def test_random_updates_match_reference() -> None:
    rng = np.random.default_rng(1)
    tree = SumTree(37)
    ref = np.zeros(37)
    is_set = np.zeros(37, dtype=bool)
    for _ in range(50):
        idx = rng.integers(0, 37, size=rng.integers(1, 20))
        val = rng.uniform(0.0, 3.0, size=idx.size)
        tree.update(idx, val)
        for i, v in zip(idx, val, strict=True):  # reference: sequential writes
            ref[i] = v
            is_set[i] = True
        np.testing.assert_allclose(tree.total(), ref.sum(), rtol=1e-12)
        assert tree.min() == ref[is_set].min()
        np.testing.assert_array_equal(tree.get(np.arange(37)), ref)


def test_find_prefix_sum_golden() -> None:
    tree = SumTree(4)
    tree.update(np.arange(4), np.array([1.0, 0.0, 2.0, 3.0]))  # cumsum 1, 1, 3, 6
    values = np.array([0.0, 0.5, 0.999, 1.0, 2.9, 3.0, 5.99, 6.0, 100.0, -1.0])
    want = np.array([0, 0, 0, 2, 2, 3, 3, 3, 3, 0])
    np.testing.assert_array_equal(tree.find_prefix_sum(values), want)


def test_find_prefix_sum_matches_searchsorted() -> None:
    rng = np.random.default_rng(2)
    leaves = rng.uniform(0.0, 1.0, size=100)
    tree = SumTree(100)
    tree.update(np.arange(100), leaves)
    values = rng.uniform(0.0, tree.total(), size=1000)
    # Leaf i with cumsum[i - 1] <= v < cumsum[i].
    want = np.searchsorted(np.cumsum(leaves), values, side="right")
    np.testing.assert_array_equal(tree.find_prefix_sum(values), want)


def test_never_returns_zero_leaf_or_padding() -> None:
    rng = np.random.default_rng(3)
    capacity = 1000
    leaves = rng.uniform(0.0, 1.0, size=capacity) ** 8  # many tiny values
    leaves[rng.random(capacity) < 0.9] = 0.0
    leaves[-5:] = 0.0  # zeros next to the padding leaves 1000..1023
    tree = SumTree(capacity)
    tree.update(np.arange(capacity), leaves)
    total = tree.total()
    cumsum = np.cumsum(leaves)
    values = np.concatenate(
        [
            rng.uniform(0.0, total, size=20_000),
            cumsum,  # exact boundaries, where rounding decides the side
            np.nextafter(cumsum, np.inf),
            np.nextafter(cumsum, -np.inf),
            [total, np.nextafter(total, np.inf), total * (1 + 1e-9), 0.0],
        ]
    )
    idx = tree.find_prefix_sum(values)
    assert idx.min() >= 0
    assert idx.max() < capacity
    assert np.all(leaves[idx] > 0.0)
    assert idx[-4] == np.flatnonzero(leaves)[-1]  # the total maps to the last non-zero leaf


def test_sampling_distribution_matches_values() -> None:
    values = np.array([1.0, 2.0, 0.0, 4.0, 8.0, 0.5, 3.5])  # 7 leaves: padded to 8
    tree = SumTree(7)
    tree.update(np.arange(7), values)
    rng = np.random.default_rng(4)
    idx = tree.find_prefix_sum(rng.uniform(0.0, tree.total(), size=100_000))
    counts = np.bincount(idx, minlength=8)
    assert counts[2] == 0 and counts[7] == 0  # zero leaf and padding leaf never drawn
    nonzero = values > 0
    stat = _chi2(counts[:7][nonzero], values[nonzero] / values.sum())
    assert stat < _chi2_critical(int(nonzero.sum()) - 1)


@pytest.mark.parametrize("capacity", [1, 2, 3, 5, 17])
def test_non_power_of_two_capacities(capacity: int) -> None:
    tree = SumTree(capacity)
    tree.update(np.arange(capacity), np.arange(1, capacity + 1, dtype=np.float64))
    assert tree.total() == capacity * (capacity + 1) / 2
    assert tree.min() == 1.0
    idx = tree.find_prefix_sum(np.linspace(0.0, tree.total(), 101))
    assert idx.max() == capacity - 1
    assert np.all(np.diff(idx) >= 0)


def test_invalid_inputs_raise() -> None:
    tree = SumTree(4)
    with pytest.raises(ValueError):
        tree.find_prefix_sum(np.array([0.0]))  # total is 0
    with pytest.raises(IndexError):
        tree.update(np.array([4]), np.array([1.0]))
    with pytest.raises(IndexError):
        tree.get(np.array([-1]))
    with pytest.raises(ValueError):
        tree.update(np.array([0]), np.array([-1.0]))
    with pytest.raises(ValueError):
        tree.update(np.array([0]), np.array([np.nan]))
    tree.update(np.array([0]), np.array([1.0]))
    with pytest.raises(ValueError):
        tree.find_prefix_sum(np.array([np.nan]))
    with pytest.raises(ValueError):
        SumTree(0)


def test_state_dict_round_trip() -> None:
    rng = np.random.default_rng(5)
    tree = SumTree(11)
    tree.update(np.arange(0, 11, 2), rng.uniform(0.1, 2.0, size=6))
    state = tree.state_dict()
    restored = SumTree(11)
    restored.load_state_dict(state)
    assert restored.total() == tree.total()
    assert restored.min() == tree.min()
    np.testing.assert_array_equal(restored.get(np.arange(11)), tree.get(np.arange(11)))
    values = rng.uniform(0.0, tree.total(), size=100)
    np.testing.assert_array_equal(restored.find_prefix_sum(values), tree.find_prefix_sum(values))
    # Unset leaves stay unset: setting one to a large value leaves the min unchanged.
    restored.update(np.array([1]), np.array([100.0]))
    assert restored.min() == tree.min()
    with pytest.raises(ValueError):
        SumTree(12).load_state_dict(state)


@pytest.mark.parametrize(("capacity", "batch"), [(100_000, 8), (100_000, 5_000), (1_000, 512)])
def test_sparse_and_dense_level_updates_keep_every_node_exact(capacity, batch):
    rng = np.random.default_rng(0)
    tree = SumTree(capacity)
    leaves = np.zeros(capacity)
    written = np.zeros(capacity, bool)
    for _ in range(20):
        idx = rng.integers(0, capacity, batch)
        val = rng.uniform(0.0, 3.0, batch)
        tree.update(idx, val)
        _, last = np.unique(idx[::-1], return_index=True)
        leaves[np.unique(idx)] = val[::-1][last]
        written[idx] = True
    assert tree.total() == pytest.approx(leaves.sum(), rel=1e-12)
    assert tree.min() == leaves[written].min()
    # Every internal node equals the sum of its two children.
    s = tree._sum
    n = tree._leaves
    np.testing.assert_allclose(s[1:n], s[2 : 2 * n : 2] + s[3 : 2 * n : 2], rtol=1e-12)
    cum = np.cumsum(leaves)
    values = rng.uniform(0, cum[-1], 256)
    np.testing.assert_array_equal(
        tree.find_prefix_sum(values), np.searchsorted(cum, values, "right")
    )
