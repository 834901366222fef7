"""Batch types that travel between components.

Transitions move as one struct of numpy arrays per batch (never one Python object per
transition), so that Ray can ship the arrays zero-copy through its object store.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import ClassVar

import numpy as np


@dataclass
class TransitionBatch:
    """A batch of n-step transitions, all arrays sharing the leading dimension B.

    Attributes:
        obs_B: observations s_t, shape [B, *obs_shape].
        action_B: actions a_t (int64), shape [B].
        return_B: n-step discounted return sum_{k<m} gamma^k r_{t+k} (float32), shape [B].
        discount_B: gamma^m, m the number of rewards summed (float32), shape [B].
        next_obs_B: observation s_{t+m} to bootstrap from, shape [B, *obs_shape].
        done_B: True when the episode terminated within the m steps (no bootstrap), shape [B].
            A truncation (time limit) is not a termination: it still bootstraps.
        priority_B: the actor's initial priority |TD error| (float32), shape [B].
        greedy_B: whether a_t was the actor's greedy action (bool), shape [B].
        epsilon_B: the exploration epsilon of the actor that produced it (float32), shape [B].
        steps_B: m, the number of rewards summed (uint8, 1 <= m <= n), shape [B].
        later_greedy_B: how many of the later actions a_{t+1} .. a_{t+m-1} were their actor's
            greedy action (uint8, <= m - 1), shape [B]; with ``steps_B`` and ``epsilon_B`` what
            the off-policy correction between actors needs (``exploration.BehaviourMixture``).
    """

    obs_B: np.ndarray
    action_B: np.ndarray
    return_B: np.ndarray
    discount_B: np.ndarray
    next_obs_B: np.ndarray
    done_B: np.ndarray
    priority_B: np.ndarray
    greedy_B: np.ndarray
    epsilon_B: np.ndarray
    steps_B: np.ndarray
    later_greedy_B: np.ndarray

    def __len__(self) -> int:
        return int(self.action_B.shape[0])

    def arrays(self) -> dict[str, np.ndarray]:
        """The fields by name, in declaration order."""
        return {f.name: getattr(self, f.name) for f in fields(self)}

    def index(self, idx: np.ndarray | slice) -> TransitionBatch:
        """Rows ``idx`` of every field (a copy for fancy indices, a view for slices)."""
        return TransitionBatch(**{k: v[idx] for k, v in self.arrays().items()})

    @staticmethod
    def concatenate(batches: list[TransitionBatch]) -> TransitionBatch:
        """One batch holding the rows of ``batches`` in order."""
        names = [f.name for f in fields(TransitionBatch)]
        return TransitionBatch(
            **{n: np.concatenate([getattr(b, n) for b in batches]) for n in names}
        )

    @staticmethod
    def empty(
        obs_shape: tuple[int, ...], obs_dtype: np.dtype | type = np.float32
    ) -> TransitionBatch:
        """A batch with zero rows and the right dtypes."""
        return TransitionBatch(
            obs_B=np.zeros((0, *obs_shape), dtype=obs_dtype),
            action_B=np.zeros(0, dtype=np.int64),
            return_B=np.zeros(0, dtype=np.float32),
            discount_B=np.zeros(0, dtype=np.float32),
            next_obs_B=np.zeros((0, *obs_shape), dtype=obs_dtype),
            done_B=np.zeros(0, dtype=bool),
            priority_B=np.zeros(0, dtype=np.float32),
            greedy_B=np.zeros(0, dtype=bool),
            epsilon_B=np.zeros(0, dtype=np.float32),
            steps_B=np.zeros(0, dtype=np.uint8),
            later_greedy_B=np.zeros(0, dtype=np.uint8),
        )


@dataclass
class ReplayStats:
    """What a replay shard reports about itself (cheap to compute, sent with every sample).

    Attributes:
        size: transitions currently stored.
        capacity: the most it can hold.
        priority_sum: sum of stored priorities p_i ** alpha.
        priority_min: min of stored p_i ** alpha (inf when empty).
        added: transitions ever added.
        sampled: transitions ever sampled.
        bytes: bytes held by the storage arrays.
        instance: a random id of the replay object: a restarted shard reports a new one, so
            its counters starting over are not mistaken for stale reports.
    """

    size: int
    capacity: int
    priority_sum: float
    priority_min: float
    added: int
    sampled: int
    bytes: int
    instance: int = 0


@dataclass
class Sample:
    """A prioritized sample drawn from one replay shard.

    Attributes:
        batch: the transitions.
        weights_B: importance-sampling weights, normalized by the batch's largest, so the same
            as those of the union of all shards (float32).
        ids_B: ids to pass back to ``update_priorities`` (int64; stale ids are ignored there).
        priorities_B: the sampled items' p_i ** alpha (what the weights were computed from;
            tests and diagnostics read them).
        stats: the shard's statistics when the sample was drawn.
    """

    batch: TransitionBatch
    weights_B: np.ndarray
    ids_B: np.ndarray
    priorities_B: np.ndarray
    stats: ReplayStats


@dataclass
class FrameBatch:
    """Transitions whose observations are frame stacks, with every distinct frame sent once.

    An Atari observation stacks the last S frames, so consecutive observations share S - 1 of
    them, and s_{t+m} shares frames with s_t: shipping and storing stacks repeats each frame up
    to 2S times. Here the frames travel once, each with a key that names it within its actor's
    stream, and the stacks are index arrays into them. A frame replay keeps one copy of each
    frame (also across pushes: it remembers the keys of the stream's previous push).

    Attributes:
        frames_F: the distinct frames, uint8, shape [F, H, W].
        keys_F: each frame's key, unique within the stream, sorted ascending (int64, [F]).
        stream: the id of the actor process that made them (keys are only unique within it).
        obs_idx_BS: rows of ``frames_F`` stacked into s_t, oldest frame first (int64, [B, S]).
        next_idx_BS: rows of ``frames_F`` stacked into s_{t+m} (int64, [B, S]).
        action_B, return_B, discount_B, done_B, priority_B, greedy_B, epsilon_B, steps_B,
            later_greedy_B: as in ``TransitionBatch``.
    """

    frames_F: np.ndarray
    keys_F: np.ndarray
    stream: int
    obs_idx_BS: np.ndarray
    next_idx_BS: np.ndarray
    action_B: np.ndarray
    return_B: np.ndarray
    discount_B: np.ndarray
    done_B: np.ndarray
    priority_B: np.ndarray
    greedy_B: np.ndarray
    epsilon_B: np.ndarray
    steps_B: np.ndarray
    later_greedy_B: np.ndarray

    SCALARS: ClassVar[tuple[str, ...]] = (
        "action_B",
        "return_B",
        "discount_B",
        "done_B",
        "priority_B",
        "greedy_B",
        "epsilon_B",
        "steps_B",
        "later_greedy_B",
    )

    def __len__(self) -> int:
        return int(self.action_B.shape[0])

    @staticmethod
    def from_stacks(
        batch: TransitionBatch, *, obs_keys_BS: np.ndarray, next_keys_BS: np.ndarray, stream: int
    ) -> FrameBatch:
        """The frame form of ``batch``, whose stacks hold the frames named by the key arrays.

        Args:
            batch: transitions with obs_B and next_obs_B of shape [B, S, H, W].
            obs_keys_BS: the key of every frame of every s_t, [B, S].
            next_keys_BS: the key of every frame of every s_{t+m}, [B, S].
            stream: the producing actor's stream id.
        """
        num, stack = obs_keys_BS.shape
        keys = np.concatenate([obs_keys_BS.reshape(-1), next_keys_BS.reshape(-1)])
        keys_F, first_F, inverse = np.unique(keys, return_index=True, return_inverse=True)
        frames = np.concatenate(
            [batch.obs_B.reshape(num * stack, *batch.obs_B.shape[2:]),
             batch.next_obs_B.reshape(num * stack, *batch.next_obs_B.shape[2:])]
        )  # fmt: skip
        inverse = inverse.reshape(2, num, stack)
        return FrameBatch(
            frames_F=frames[first_F],
            keys_F=keys_F.astype(np.int64),
            stream=int(stream),
            obs_idx_BS=inverse[0].astype(np.int64),
            next_idx_BS=inverse[1].astype(np.int64),
            **{name: getattr(batch, name) for name in FrameBatch.SCALARS},
        )

    def to_transitions(self) -> TransitionBatch:
        """The same transitions with their stacks rebuilt (what a plain replay stores)."""
        return TransitionBatch(
            obs_B=self.frames_F[self.obs_idx_BS],
            next_obs_B=self.frames_F[self.next_idx_BS],
            **{name: getattr(self, name) for name in FrameBatch.SCALARS},
        )
