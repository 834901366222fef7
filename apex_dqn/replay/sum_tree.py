"""Array-based sum tree and min tree over leaf values, for proportional prioritized sampling.

This module owns the data structure behind prioritized replay (Schaul et al. 2016): a complete
binary tree stored in flat float64 arrays, one holding subtree sums and one holding subtree
minima over the same leaves. Leaves are padded to a power of two so that every leaf sits at the
same depth; padding leaves hold 0 in the sum tree and +inf in the min tree, so they are never
sampled and never count towards the minimum. Every operation is vectorized over a batch of
indices or values: updates recompute parents one tree level at a time, and prefix-sum search
descends the tree for all values at once. Numpy only: no torch, no Ray.
"""

from __future__ import annotations

import numpy as np


def _unique_sorted(sorted_B: np.ndarray) -> np.ndarray:
    """The distinct values of an ascending array (``np.unique`` without the sort)."""
    if sorted_B.size < 2:
        return sorted_B
    keep_B = np.empty(sorted_B.shape, dtype=bool)
    keep_B[0] = True
    np.not_equal(sorted_B[1:], sorted_B[:-1], out=keep_B[1:])
    return sorted_B[keep_B]


class SumTree:
    """Sum tree and min tree over ``capacity`` non-negative leaf values.

    Node ``k`` has children ``2k`` and ``2k + 1``; the root is node 1 and leaf ``i`` is node
    ``leaves + i`` where ``leaves`` is the smallest power of two >= ``capacity``. Internal nodes
    are always recomputed from their children (never incremented), so sums do not drift.
    """

    def __init__(self, capacity: int) -> None:
        """Allocates both trees with every leaf unset.

        Args:
            capacity: number of leaves addressable by ``update`` and ``get``, >= 1.

        Raises:
            ValueError: if ``capacity`` < 1.
        """
        if int(capacity) < 1:
            raise ValueError(f"capacity must be >= 1, got {capacity}")
        self._capacity = int(capacity)
        self._depth = max(0, (self._capacity - 1).bit_length())
        self._leaves = 1 << self._depth
        # Index 0 is unused; nodes live in [1, 2 * leaves), leaves in [leaves, 2 * leaves).
        self._sum = np.zeros(2 * self._leaves, dtype=np.float64)
        self._min = np.full(2 * self._leaves, np.inf, dtype=np.float64)

    @property
    def capacity(self) -> int:
        """Number of addressable leaves."""
        return self._capacity

    def _check_idx(self, idx_B: np.ndarray) -> np.ndarray:
        idx_B = np.asarray(idx_B, dtype=np.int64).reshape(-1)
        if idx_B.size and (idx_B.min() < 0 or idx_B.max() >= self._capacity):
            raise IndexError(f"leaf indices must lie in [0, {self._capacity})")
        return idx_B

    def update(self, idx_B: np.ndarray, value_B: np.ndarray) -> None:
        """Sets leaves ``idx_B`` to ``value_B`` and recomputes their ancestors.

        Args:
            idx_B: leaf indices in [0, capacity), shape [B]. When an index repeats, the value
                written last (the highest position in ``idx_B``) wins.
            value_B: finite values >= 0, shape [B] (or a scalar, broadcast to all indices).

        Raises:
            IndexError: if an index is out of range.
            ValueError: if a value is negative or not finite, or the shapes differ.
        """
        idx_B = self._check_idx(idx_B)
        value_B = np.broadcast_to(np.asarray(value_B, dtype=np.float64), idx_B.shape)
        if not np.all(np.isfinite(value_B)) or np.any(value_B < 0):
            raise ValueError("sum tree values must be finite and >= 0")
        if idx_B.size == 0:
            return
        # Last write wins: np.unique on the reversed indices returns each index's first
        # occurrence there, i.e. its last occurrence in the original order (and sorts them).
        node_U, first_U = np.unique(idx_B[::-1], return_index=True)
        value_U = value_B[::-1][first_U]
        node_U = node_U + self._leaves
        self._sum[node_U] = value_U
        self._min[node_U] = value_U
        self._propagate(node_U)

    def remove(self, idx_B: np.ndarray) -> None:
        """Unsets leaves ``idx_B``: they hold 0 in the sum tree and +inf in the min tree, so they
        are never sampled and never count towards the minimum (as if never set)."""
        idx_B = self._check_idx(idx_B)
        if idx_B.size == 0:
            return
        node_U = np.unique(idx_B) + self._leaves
        self._sum[node_U] = 0.0
        self._min[node_U] = np.inf
        self._propagate(node_U)

    def _propagate(self, node_U: np.ndarray) -> None:
        """Recompute the ancestors of the distinct sorted leaf nodes ``node_U``."""
        # Sparse recomputation of the touched parents while a level is wide; once a level holds
        # no more nodes than ~4 per update, recomputing it whole (two strided ufunc calls) is
        # cheaper than gathering and scattering, and it needs no deduplication. Measured with
        # benchmarks/replay_bench.py: about twice the update rate at 1M leaves.
        level = self._depth
        while level > 0 and (1 << (level - 1)) > 4 * node_U.size:
            node_U = _unique_sorted(node_U >> 1)
            left_U = node_U << 1
            right_U = left_U + 1
            self._sum[node_U] = self._sum.take(left_U) + self._sum.take(right_U)
            self._min[node_U] = np.minimum(self._min.take(left_U), self._min.take(right_U))
            level -= 1
        while level > 0:
            lo, hi = 1 << (level - 1), 1 << level  # the parent level's nodes
            np.add(
                self._sum[2 * lo : 2 * hi : 2],
                self._sum[2 * lo + 1 : 2 * hi : 2],
                out=self._sum[lo:hi],
            )
            np.minimum(
                self._min[2 * lo : 2 * hi : 2],
                self._min[2 * lo + 1 : 2 * hi : 2],
                out=self._min[lo:hi],
            )
            level -= 1

    def get(self, idx_B: np.ndarray) -> np.ndarray:
        """Leaf values at ``idx_B`` (0 for leaves never set), float64, same shape as ``idx_B``."""
        shape = np.shape(idx_B)
        return self._sum[self._check_idx(idx_B) + self._leaves].reshape(shape)

    def total(self) -> float:
        """Sum of all leaf values."""
        return float(self._sum[1])

    def min(self) -> float:
        """Minimum over the leaves that were set (+inf when none was)."""
        return float(self._min[1])

    def max(self) -> float:
        """Maximum leaf value (0 when none was set). A scan of all leaves: O(capacity)."""
        return float(self._sum[self._leaves : self._leaves + self._capacity].max())

    def find_prefix_sum(self, value_B: np.ndarray) -> np.ndarray:
        """Leaf indices i with cumsum(leaves)[i - 1] <= value < cumsum(leaves)[i], one descent.

        Values are clipped to [0, total]. The descent only enters subtrees with a positive sum,
        so even under floating-point rounding (a value at or just above the total, or a residual
        that lands exactly on a boundary) it never returns a leaf holding 0, and so never a
        padding leaf (index >= capacity). A value at the total returns the last non-zero leaf.

        Args:
            value_B: finite prefix sums to look up, shape [B].

        Returns:
            Leaf indices, int64, shape [B].

        Raises:
            ValueError: if the total is not positive, or a value is not finite.
        """
        total = self._sum[1]
        if not total > 0.0:
            raise ValueError(f"find_prefix_sum needs a positive total, got {total}")
        value_B = np.asarray(value_B, dtype=np.float64).reshape(-1)
        if not np.all(np.isfinite(value_B)):
            raise ValueError("find_prefix_sum values must be finite")
        value_B = np.clip(value_B, 0.0, total)
        node_B = np.ones(value_B.shape, dtype=np.int64)
        for _ in range(self._depth):
            node_B <<= 1  # the left child
            left_sum_B = self._sum.take(node_B)
            # Invariant: the current node's sum is > 0. Go right only into a positive subtree;
            # otherwise the left subtree holds the whole (positive) sum of the node.
            go_right_B = value_B >= left_sum_B
            go_right_B &= self._sum.take(node_B + 1) > 0.0
            value_B -= left_sum_B * go_right_B
            node_B += go_right_B
        return node_B - self._leaves

    def state_dict(self) -> dict:
        """Plain data: the capacity and the leaves of both trees (internal nodes are rebuilt)."""
        end = self._leaves + self._capacity
        return {
            "capacity": self._capacity,
            "sum_leaves": self._sum[self._leaves : end].copy(),
            "min_leaves": self._min[self._leaves : end].copy(),
        }

    def load_state_dict(self, state: dict) -> None:
        """Restores leaves saved by ``state_dict`` and rebuilds every internal node.

        Raises:
            ValueError: if the saved capacity differs from this tree's.
        """
        if int(state["capacity"]) != self._capacity:
            raise ValueError(
                f"saved sum tree has capacity {state['capacity']}, this one {self._capacity}"
            )
        end = self._leaves + self._capacity
        self._sum[:] = 0.0
        self._min[:] = np.inf
        self._sum[self._leaves : end] = np.asarray(state["sum_leaves"], dtype=np.float64)
        self._min[self._leaves : end] = np.asarray(state["min_leaves"], dtype=np.float64)
        level = self._leaves >> 1
        while level >= 1:
            # Nodes [level, 2 * level) from their children [2 * level, 4 * level).
            children_sum = self._sum[2 * level : 4 * level]
            children_min = self._min[2 * level : 4 * level]
            self._sum[level : 2 * level] = children_sum[0::2] + children_sum[1::2]
            self._min[level : 2 * level] = np.minimum(children_min[0::2], children_min[1::2])
            level >>= 1
