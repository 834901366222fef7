"""Prioritized replay of frame-stack observations that stores every frame once.

This module owns the memory layout of Atari replay. An observation stacks the last S frames
([S, H, W] uint8), so a naive buffer that keeps s_t and s_{t+m} per transition holds each frame
up to 2S times (1M Atari transitions: about 56 GB). Here frames live once, in a ring of their
own; a transition keeps 2S frame ids (int64) from which ``sample`` rebuilds both stacks.

Frames arrive as ``FrameBatch``es: the distinct frames of one actor push with a key each. The
next push of the same actor repeats the few frames its first stacks share with the previous
push; the replay remembers the keys and frame ids of each stream's last push and stores only
frames it does not hold, so steady state costs one frame per environment step (plus one per
episode end). Episode starts (stacks padded with the first frame) and the borders between
episodes and between actors need no special case: the actor names every frame of every stack.

The frame ring is slightly larger than the transition ring (``frame_capacity``). Should a
transition outlive its frames anyway (many tiny pushes, say), ``sample`` finds it, removes it
from the sum tree and draws again, so a rebuilt stack is never wrong. Numpy only.
"""

from __future__ import annotations

import numpy as np

from apex_dqn.core.types import FrameBatch, TransitionBatch
from apex_dqn.replay.prioritized import PrioritizedReplay

_STREAMS_KEPT = 4096  # stream tails remembered (actor processes ever seen), oldest dropped


class FramePrioritizedReplay(PrioritizedReplay):
    """``PrioritizedReplay`` for [S, H, W] uint8 stacks that stores each frame once.

    ``add`` takes ``FrameBatch``; ``sample`` returns ordinary ``TransitionBatch``es with the
    stacks rebuilt, so the learner cannot tell the difference.
    """

    def __init__(
        self,
        *,
        capacity: int,
        obs_shape: tuple[int, ...],
        obs_dtype: np.dtype | type = np.uint8,
        alpha: float = 0.6,
        priority_eps: float = 1e-6,
        seed: int = 0,
        frame_capacity: int | None = None,
        behaviour: bool = False,
    ) -> None:
        """Preallocates the transition fields, the frame ring and the sum tree.

        Args:
            capacity: the most transitions held, >= 1.
            obs_shape: [S, H, W] of one stacked observation.
            obs_dtype: must be uint8 (frames).
            alpha: priority exponent, >= 0.
            priority_eps: floor on priorities, > 0.
            seed: seed of the sampling RNG.
            frame_capacity: frames held, >= capacity (default: capacity + capacity / 32 + 1024,
                room for the extra frame per episode end and some unshared push borders).
            behaviour: store the behaviour fields (``PrioritizedReplay``).

        Raises:
            ValueError: for a non-3-D shape, a dtype other than uint8 or a small frame ring.
        """
        if len(obs_shape) != 3 or np.dtype(obs_dtype) != np.uint8:
            raise ValueError(f"frames need obs_shape [S, H, W] uint8, got {obs_shape} {obs_dtype}")
        self._stack = int(obs_shape[0])
        super().__init__(
            capacity=capacity,
            obs_shape=obs_shape,
            obs_dtype=np.uint8,
            alpha=alpha,
            priority_eps=priority_eps,
            seed=seed,
            behaviour=behaviour,
        )
        default = self._capacity + self._capacity // 32 + 1024
        self._frame_capacity = int(frame_capacity or default)
        if self._frame_capacity < self._capacity:
            raise ValueError(f"frame_capacity must be >= capacity ({self._capacity})")
        self._frames = np.zeros((self._frame_capacity, *obs_shape[1:]), dtype=np.uint8)
        self._frames_added = 0
        # stream -> (sorted keys, frame ids) of that stream's last push
        self._tails: dict[int, tuple[np.ndarray, np.ndarray]] = {}
        self._dead = 0  # filled slots removed because their frames were overwritten
        self.frames_reused = 0

    def _allocate(self) -> dict[str, np.ndarray]:
        template = TransitionBatch.empty((0,), np.uint8, self._behaviour)
        storage = {
            name: np.zeros((self._capacity, *empty.shape[1:]), dtype=empty.dtype)
            for name, empty in template.arrays().items()
            if name not in ("obs_B", "next_obs_B")
        }
        storage["obs_fid_BS"] = np.zeros((self._capacity, self._stack), dtype=np.int64)
        storage["next_fid_BS"] = np.zeros((self._capacity, self._stack), dtype=np.int64)
        return storage

    def __len__(self) -> int:
        return self._filled() - self._dead

    def add(self, batch: FrameBatch) -> None:  # type: ignore[override]
        """Stores the frames this replay does not hold yet, then the transitions.

        Raises:
            TypeError: for anything but a ``FrameBatch``.
            ValueError: if frame shapes or index ranges do not match.
        """
        if not isinstance(batch, FrameBatch):
            raise TypeError(f"a frame replay stores FrameBatch, got {type(batch).__name__}")
        frames, num = batch.frames_F, len(batch)
        if frames.shape[1:] != self._frames.shape[1:] or frames.dtype != np.uint8:
            raise ValueError(
                f"frames have shape {frames.shape[1:]} {frames.dtype}, expected "
                f"{self._frames.shape[1:]} uint8"
            )
        for name in ("obs_idx_BS", "next_idx_BS"):
            idx = getattr(batch, name)
            if idx.shape != (num, self._stack) or (
                idx.size and (idx.min() < 0 or idx.max() >= len(frames))
            ):
                raise ValueError(f"{name} must be [{num}, {self._stack}] rows of frames_F")
        found = {name: getattr(batch, name) for name in FrameBatch.SCALARS}
        arrays = {name: array for name, array in found.items() if array is not None}
        self._check_fields([*arrays, "obs_fid_BS", "next_fid_BS"])  # before a frame is stored
        fid_F = self._store_frames(batch)
        arrays["obs_fid_BS"] = fid_F[batch.obs_idx_BS]
        arrays["next_fid_BS"] = fid_F[batch.next_idx_BS]
        self._insert(arrays, num)

    def _store_frames(self, batch: FrameBatch) -> np.ndarray:
        """Frame ids for ``batch.frames_F``: reused from the stream's last push where that
        push had the same key and the frame is still in the ring, new ones otherwise."""
        keys_F = np.asarray(batch.keys_F, dtype=np.int64)
        num_frames = len(keys_F)
        fid_F = np.full(num_frames, -1, dtype=np.int64)
        tail = self._tails.pop(batch.stream, None)
        if tail is not None and num_frames:
            prev_keys, prev_fids = tail
            pos_F = np.minimum(np.searchsorted(prev_keys, keys_F), len(prev_keys) - 1)
            # Conservatively live after this push's writes, whatever they are.
            floor = self._frames_added + num_frames - self._frame_capacity
            hit_F = (prev_keys[pos_F] == keys_F) & (prev_fids[pos_F] >= floor)
            fid_F[hit_F] = prev_fids[pos_F[hit_F]]
            self.frames_reused += int(hit_F.sum())
        new_F = np.flatnonzero(fid_F < 0)
        count = len(new_F)
        if count:
            ids = np.arange(self._frames_added, self._frames_added + count, dtype=np.int64)
            fid_F[new_F] = ids
            # Consecutive ring slots: at most two slice copies (as for transitions).
            first = int(ids[0] % self._frame_capacity)
            head = min(count, self._frame_capacity - first)
            rows = batch.frames_F[new_F] if count < num_frames else batch.frames_F
            self._frames[first : first + head] = rows[:head]
            if head < count:
                self._frames[: count - head] = rows[head:]
            self._frames_added += count
        order = np.argsort(keys_F, kind="stable")
        self._tails[batch.stream] = (keys_F[order], fid_F[order])
        if len(self._tails) > _STREAMS_KEPT:
            self._tails.pop(next(iter(self._tails)))
        return fid_F

    def _overwriting(self, slot_K: np.ndarray) -> None:
        # A removed slot that is overwritten holds a live transition again.
        self._dead -= int(((self._ids[slot_K] < 0) & (slot_K < self._filled())).sum())

    def _stale(self, slot_B: np.ndarray) -> np.ndarray:
        """Which slots reference a frame that the ring has overwritten since."""
        floor = self._frames_added - self._frame_capacity
        obs = self._storage["obs_fid_BS"][slot_B]
        nxt = self._storage["next_fid_BS"][slot_B]
        return (obs.min(axis=1) < floor) | (nxt.min(axis=1) < floor)

    def _draw(self, batch_size: int) -> np.ndarray:
        while True:
            slot_B = super()._draw(batch_size)
            stale_B = self._stale(slot_B)
            if not stale_B.any():
                return slot_B
            dead_U = np.unique(slot_B[stale_B])
            self._tree.remove(dead_U)
            self._ids[dead_U] = -1  # later priority updates for them are ignored
            self._dead += len(dead_U)
            if len(self) == 0 or self._tree.total() <= 0.0:
                raise ValueError("cannot sample: every stored transition lost its frames")

    def _rows(self, slot_B: np.ndarray) -> TransitionBatch:
        ring = self._frame_capacity
        return TransitionBatch(
            obs_B=self._frames[self._storage["obs_fid_BS"][slot_B] % ring],
            next_obs_B=self._frames[self._storage["next_fid_BS"][slot_B] % ring],
            **{n: self._storage[n][slot_B] for n in FrameBatch.SCALARS if n in self._storage},
        )

    def _extra_bytes(self) -> int:
        return int(self._frames.nbytes)

    def state_dict(self) -> dict:
        """``PrioritizedReplay.state_dict`` plus the frames, the frame counter and the stream
        tails (so a restored replay keeps deduplicating the next pushes)."""
        state = super().state_dict()
        held = min(self._frames_added, self._frame_capacity)
        streams = list(self._tails)
        state["frames"] = {
            "capacity": self._frame_capacity,
            "added": self._frames_added,
            "ring": self._frames[:held].copy(),
            "dead": self._dead,
            "tail_streams": np.array(streams, dtype=np.int64),
            "tail_sizes": np.array([len(self._tails[s][0]) for s in streams], dtype=np.int64),
            "tail_keys": np.concatenate([self._tails[s][0] for s in streams] or [np.zeros(0)]),
            "tail_fids": np.concatenate([self._tails[s][1] for s in streams] or [np.zeros(0)]),
        }
        return state

    def load_state_dict(self, state: dict) -> None:
        """Restores a ``state_dict``.

        Raises:
            ValueError: if the saved replay's shapes or frame capacity differ from this one's.
        """
        frames = state["frames"]
        if int(frames["capacity"]) != self._frame_capacity:
            raise ValueError(
                f"saved frame_capacity {frames['capacity']} does not match {self._frame_capacity}"
            )
        super().load_state_dict(state)
        ring = np.asarray(frames["ring"], dtype=np.uint8)
        self._frames[: len(ring)] = ring
        self._frames_added = int(frames["added"])
        self._dead = int(frames["dead"])
        keys = np.asarray(frames["tail_keys"], dtype=np.int64)
        fids = np.asarray(frames["tail_fids"], dtype=np.int64)
        bounds = np.cumsum(np.asarray(frames["tail_sizes"], dtype=np.int64))[:-1]
        streams = np.asarray(frames["tail_streams"], dtype=np.int64)
        self._tails = {
            int(s): (k, f)
            for s, k, f in zip(streams, np.split(keys, bounds), np.split(fids, bounds), strict=True)
        }
