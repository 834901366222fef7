"""Proportional prioritized replay with FIFO eviction: one replay shard.

This module owns the storage, sampling and priority bookkeeping of one replay shard (Schaul et
al. 2016, "Prioritized Experience Replay"; Horgan et al. 2018, Ape-X). Transitions live in
preallocated numpy arrays, one per ``TransitionBatch`` field, used as a ring: item number ``id``
(a global insertion counter) sits in slot ``id % capacity``, so the oldest item is overwritten
first. A ``SumTree`` holds p_i ** alpha per slot; sampling is stratified over the total and
vectorized over the batch. Importance weights come from the pure function
``importance_weights``; normalized per batch, they need no statistics of other shards.
Numpy only: no torch, no Ray (the Ray layer wraps this class as a "replay shard").
"""

from __future__ import annotations

import os
from collections.abc import Iterable

import numpy as np

from apex_dqn.core.types import BEHAVIOUR_FIELDS, ReplayStats, Sample, TransitionBatch
from apex_dqn.replay.sum_tree import SumTree


def importance_weights(priorities_B: np.ndarray, *, beta: float) -> np.ndarray:
    """Importance-sampling weights of a sampled batch, normalized by the batch's largest one.

    With P(i) = p_i / S (S the sum of priorities over the whole replay, every shard) and N
    items, w_i = (N * P(i)) ** -beta; dividing by the largest weight in the batch gives
    w_i = (min_batch p_j / p_i) ** beta, in which N and S cancel: a shard's weights are those
    of the union of all shards, with no global statistics needed.

    The batch maximum, not the replay's (Schaul et al. 2016 normalise by max_j w_j over the
    buffer): a single near-zero priority anywhere in the replay (floored at priority_eps, e.g.
    a transition the network fits exactly) made every replay-normalized weight tiny (means of
    0.04 were seen on MinAtar and Pong), which shrinks the gradient until Adam's epsilon, not
    the learning rate, sets the step. Normalized per batch, the largest weight is 1.

    Args:
        priorities_B: p_i (already raised to alpha) of the sampled items, > 0, shape [B].
        beta: importance-sampling exponent, >= 0 (0: all weights 1; 1: full correction).

    Returns:
        Weights in (0, 1], the largest exactly 1, float32, shape [B].

    Raises:
        ValueError: if a priority is not finite and positive, or beta < 0.
    """
    p_B = np.asarray(priorities_B, dtype=np.float64)
    if beta < 0.0 or not (np.all(p_B > 0.0) and np.all(np.isfinite(p_B))):
        raise ValueError(f"need finite priorities > 0 and beta >= 0, got beta={beta}")
    # IS weight w_i = (N * P(i)) ** -beta / max_j w_j = (min_j p_j / p_i) ** beta.
    return ((p_B.min() / p_B) ** beta).astype(np.float32)


class PrioritizedReplay:
    """A ring buffer of transitions sampled in proportion to p_i ** alpha.

    ``sample`` returns ids; ``update_priorities`` takes them back and ignores those whose slot
    has been overwritten since (the learner's answer about an evicted item is stale).
    """

    def __init__(
        self,
        *,
        capacity: int,
        obs_shape: tuple[int, ...],
        obs_dtype: np.dtype | type = np.float32,
        alpha: float = 0.6,
        priority_eps: float = 1e-6,
        seed: int = 0,
        behaviour: bool = False,
    ) -> None:
        """Preallocates the storage arrays and the sum tree.

        Args:
            capacity: the most transitions held, >= 1; adding more evicts the oldest.
            obs_shape: shape of one observation.
            obs_dtype: dtype observations are stored in (uint8 for Atari frames).
            alpha: priority exponent, >= 0: P(i) proportional to p_i ** alpha (0 is uniform).
            priority_eps: floor on |p_i| before the exponent, > 0, so no item becomes
                unsampleable.
            seed: seed of this replay's own random generator.
            behaviour: store the behaviour fields (``TransitionBatch.has_behaviour``) that
                ``learner.actor_correction`` needs; batches must then carry them, else not.

        Raises:
            ValueError: if an argument is out of range.
        """
        if int(capacity) < 1:
            raise ValueError(f"capacity must be >= 1, got {capacity}")
        if not (alpha >= 0.0 and priority_eps > 0.0):
            raise ValueError(f"need alpha >= 0, priority_eps > 0, got {alpha}, {priority_eps}")
        self._capacity = int(capacity)
        self._obs_shape = tuple(int(d) for d in obs_shape)
        self._obs_dtype = np.dtype(obs_dtype)
        self._alpha = float(alpha)
        self._priority_eps = float(priority_eps)
        self._rng = np.random.default_rng(seed)
        self._behaviour = bool(behaviour)
        self._storage = self._allocate()
        # The id of the item in each slot (-1: never written); ids are global insertion counts.
        self._ids = np.full(self._capacity, -1, dtype=np.int64)
        self._tree = SumTree(self._capacity)
        self._added = 0
        self._sampled = 0
        self._instance = int.from_bytes(os.urandom(7), "little")

    def _allocate(self) -> dict[str, np.ndarray]:
        """One preallocated array per stored field, ``capacity`` rows each."""
        template = TransitionBatch.empty(self._obs_shape, self._obs_dtype, self._behaviour)
        return {
            name: np.zeros((self._capacity, *empty.shape[1:]), dtype=empty.dtype)
            for name, empty in template.arrays().items()
        }

    def __len__(self) -> int:
        return self._filled()

    def _filled(self) -> int:
        """Slots written so far (they fill from 0): the prefix that holds data."""
        return min(self._added, self._capacity)

    def _scaled(self, priority_B: np.ndarray) -> np.ndarray:
        """p ** alpha with p = max(|priority|, eps), float64."""
        floor_B = np.maximum(np.abs(np.asarray(priority_B, dtype=np.float64)), self._priority_eps)
        return floor_B**self._alpha

    def add(self, batch: TransitionBatch) -> None:
        """Stores ``batch``, overwriting the oldest items when full.

        Only the last ``capacity`` rows of a batch larger than the buffer are kept, but ids
        advance for every row. The tree gets max(|priority|, eps) ** alpha per row; a row whose
        priority is NaN or infinite gets the current largest stored p ** alpha (1.0 when empty).

        Raises:
            ValueError: if the fields' lengths or the observation shape do not match.
        """
        self._insert(batch.arrays(), len(batch))

    def _insert(self, arrays: dict[str, np.ndarray], num: int) -> None:
        """Checks the rows of every stored field and writes them, oldest items first out."""
        self._check_fields(arrays.keys())
        for name, array in arrays.items():
            want = self._storage[name].shape[1:]
            if array.shape[0] != num or array.shape[1:] != want:
                raise ValueError(f"{name} has shape {array.shape}, expected ({num}, *{want})")
        if num == 0:
            return
        keep = min(num, self._capacity)
        id_K = np.arange(self._added + num - keep, self._added + num, dtype=np.int64)
        slot_K = id_K % self._capacity
        self._overwriting(slot_K)
        raw_K = np.asarray(arrays["priority_B"][num - keep :], dtype=np.float64)
        finite_K = np.isfinite(raw_K)
        priority_K = self._scaled(np.where(finite_K, raw_K, 0.0))
        if not finite_K.all():
            # The current largest p ** alpha: a scan of the leaves, paid only for bad priorities.
            priority_K[~finite_K] = self._tree.max() if len(self) > 0 else 1.0
        # Slots are consecutive modulo capacity: copy as at most two slices (a fancy-indexed
        # scatter of large rows, e.g. Atari frames, is several times slower).
        first = int(slot_K[0])
        head = min(keep, self._capacity - first)
        for name, array in arrays.items():
            rows = array[num - keep :]
            self._storage[name][first : first + head] = rows[:head]
            if head < keep:
                self._storage[name][: keep - head] = rows[head:]
        self._ids[slot_K] = id_K
        self._tree.update(slot_K, priority_K)
        self._added += num

    def _check_fields(self, names: Iterable[str]) -> None:
        """A batch must carry exactly the fields this replay stores (with or without the
        behaviour fields of ``learner.actor_correction``)."""
        names = list(names)
        if set(names) != set(self._storage):
            raise ValueError(
                f"a batch with fields {sorted(names)} for a replay that stores "
                f"{sorted(self._storage)} (behaviour fields: learner.actor_correction)"
            )

    def sample(self, batch_size: int, beta: float) -> Sample:
        """Draws ``batch_size`` items with P(i) = p_i / sum_j p_j (with replacement).

        Stratified as in Schaul et al. (2016): [0, total) is cut into ``batch_size`` equal
        segments and one value is drawn uniformly in each, then one vectorized tree descent
        finds all items.

        Args:
            batch_size: items to draw, >= 1.
            beta: importance-sampling exponent, >= 0.

        Returns:
            A copy of the rows, their importance weights (normalized by the batch's largest,
            so equal to those of the union of all shards), the items' ids and p ** alpha, and
            ``stats()``.

        Raises:
            ValueError: if the replay is empty or ``batch_size`` < 1.
        """
        if len(self) == 0:
            raise ValueError("cannot sample from an empty replay")
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        slot_B = self._draw(batch_size)
        priority_B = self._tree.get(slot_B)
        weights_B = importance_weights(priority_B, beta=beta)
        batch = self._rows(slot_B)
        self._sampled += batch_size
        return Sample(
            batch=batch,
            weights_B=weights_B,
            ids_B=self._ids[slot_B],
            priorities_B=priority_B,
            stats=self.stats(),
        )

    def _overwriting(self, slot_K: np.ndarray) -> None:
        """Called with the slots an insert is about to write, before it writes them."""

    def _draw(self, batch_size: int) -> np.ndarray:
        """Slots of ``batch_size`` stratified draws: one vectorized descent of the tree."""
        total = self._tree.total()
        # One uniform draw in each segment [k, k + 1) * total / B.
        value_B = (np.arange(batch_size) + self._rng.random(batch_size)) * (total / batch_size)
        return self._tree.find_prefix_sum(value_B)

    def _rows(self, slot_B: np.ndarray) -> TransitionBatch:
        """Copies of the transitions in ``slot_B``."""
        return TransitionBatch(**{name: array[slot_B] for name, array in self._storage.items()})

    def _extra_bytes(self) -> int:
        """Bytes held besides the per-slot fields and ids (a frame replay's frames)."""
        return 0

    def update_priorities(self, ids_B: np.ndarray, priorities_B: np.ndarray) -> int:
        """Sets new priorities for items still stored; returns how many were applied.

        Ignored: ids whose slot now holds another item (overwritten since sampled), ids never
        added, and NaN or infinite priorities. Among the remaining rows, when an id repeats the
        last one wins. Stored values are max(|priority|, eps) ** alpha.

        Args:
            ids_B: ids from ``sample``, shape [B].
            priorities_B: new priorities p (e.g. |TD error|), shape [B].

        Returns:
            The number of distinct ids whose priority was set.
        """
        ids_B = np.asarray(ids_B, dtype=np.int64).reshape(-1)
        priorities_B = np.asarray(priorities_B, dtype=np.float64).reshape(-1)
        if ids_B.shape != priorities_B.shape:
            raise ValueError(f"ids {ids_B.shape} and priorities {priorities_B.shape} differ")
        slot_B = ids_B % self._capacity
        valid_B = (ids_B >= 0) & np.isfinite(priorities_B) & (self._ids[slot_B] == ids_B)
        slot_V = slot_B[valid_B]
        self._tree.update(slot_V, self._scaled(priorities_B[valid_B]))
        return int(np.unique(slot_V).size)

    def stats(self) -> ReplayStats:
        """Size, capacity, priority sum and min (inf when empty), counters and storage bytes."""
        return ReplayStats(
            size=len(self),
            capacity=self._capacity,
            priority_sum=self._tree.total(),
            priority_min=self._tree.min(),
            added=self._added,
            sampled=self._sampled,
            bytes=int(
                sum(a.nbytes for a in self._storage.values())
                + self._ids.nbytes
                + self._extra_bytes()
            ),
            instance=self._instance,
        )

    def state_dict(self) -> dict:
        """Plain data (numpy arrays, ints, floats, strings, dicts): contents, tree, counters, RNG.

        Only the ``len(self)`` filled slots are saved (slots fill from 0, so they are a prefix),
        as copies that later ``add`` calls do not change. ``torch.load(weights_only=True)``
        refuses numpy arrays: a checkpoint writer converts them (``torch.from_numpy``), and
        ``load_state_dict`` takes the tensors back as they are.
        """
        size = self._filled()
        return {
            "capacity": self._capacity,
            "obs_shape": list(self._obs_shape),
            "obs_dtype": self._obs_dtype.str,
            "alpha": self._alpha,
            "priority_eps": self._priority_eps,
            "added": self._added,
            "sampled": self._sampled,
            "storage": {name: array[:size].copy() for name, array in self._storage.items()},
            "ids": self._ids[:size].copy(),
            "tree": self._tree.state_dict(),
            "rng": self._rng.bit_generator.state,
        }

    def load_state_dict(self, state: dict) -> None:
        """Restores a ``state_dict``; array values may also be anything ``np.asarray`` accepts.

        Behaviour fields the snapshot lacks are zeros (``steps_B`` = 0 gives the actor-mixture
        correction weight 1: no correction for those rows); those this replay does not store
        are dropped.

        Raises:
            ValueError: if the saved replay's capacity, observations, alpha or eps differ.
        """
        saved = (
            int(state["capacity"]),
            tuple(int(d) for d in state["obs_shape"]),
            np.dtype(state["obs_dtype"]),
            float(state["alpha"]),
            float(state["priority_eps"]),
        )
        mine = (self._capacity, self._obs_shape, self._obs_dtype, self._alpha, self._priority_eps)
        if saved != mine:
            raise ValueError(
                f"saved replay (capacity, obs_shape, obs_dtype, alpha, eps) = "
                f"{saved} does not match this one's {mine}"
            )
        added = int(state["added"])
        size = min(added, self._capacity)
        for name in self._storage:
            if name in BEHAVIOUR_FIELDS and name not in state["storage"]:
                self._storage[name][:size] = 0
                continue
            self._storage[name][:size] = np.asarray(state["storage"][name])
        self._ids[:] = -1
        self._ids[:size] = np.asarray(state["ids"], dtype=np.int64)
        self._tree.load_state_dict(state["tree"])
        self._added = added
        self._sampled = int(state["sampled"])
        self._rng.bit_generator.state = state["rng"]
