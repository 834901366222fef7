"""Batch types that travel between components.

Transitions move as one struct of numpy arrays per batch (never one Python object per
transition), so that Ray can ship the arrays zero-copy through its object store.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields
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

    The behaviour fields (``BEHAVIOUR_FIELDS``) are what the off-policy correction between
    actors needs (``learner.actor_correction``, ``exploration.BehaviourMixture``); they are
    None, and travel nowhere, unless that option is on:

        greedy_B: whether a_t was the actor's greedy action (bool), shape [B].
        epsilon_B: the exploration epsilon of the actor that produced it (float32), shape [B].
        steps_B: m, the number of rewards summed (uint8, 1 <= m <= n), shape [B].
        later_greedy_B: how many of the later actions a_{t+1} .. a_{t+m-1} were their actor's
            greedy action (uint8, <= m - 1), shape [B].
    """

    obs_B: np.ndarray
    action_B: np.ndarray
    return_B: np.ndarray
    discount_B: np.ndarray
    next_obs_B: np.ndarray
    done_B: np.ndarray
    priority_B: np.ndarray
    greedy_B: np.ndarray | None = None
    epsilon_B: np.ndarray | None = None
    steps_B: np.ndarray | None = None
    later_greedy_B: np.ndarray | None = None

    def __len__(self) -> int:
        return int(self.action_B.shape[0])

    @property
    def has_behaviour(self) -> bool:
        """Whether the behaviour fields are there (``learner.actor_correction``)."""
        return self.epsilon_B is not None

    def arrays(self) -> dict[str, np.ndarray]:
        """The fields that are there, by name, in declaration order."""
        found = {f.name: getattr(self, f.name) for f in fields(self)}
        return {name: array for name, array in found.items() if array is not None}

    def index(self, idx: np.ndarray | slice) -> TransitionBatch:
        """Rows ``idx`` of every field (a copy for fancy indices, a view for slices)."""
        return TransitionBatch(**{k: v[idx] for k, v in self.arrays().items()})

    @staticmethod
    def concatenate(batches: list[TransitionBatch]) -> TransitionBatch:
        """One batch holding the rows of ``batches`` in order."""
        names = batches[0].arrays().keys()
        return TransitionBatch(
            **{n: np.concatenate([b.arrays()[n] for b in batches]) for n in names}
        )

    @staticmethod
    def empty(
        obs_shape: tuple[int, ...], obs_dtype: np.dtype | type = np.float32, behaviour: bool = False
    ) -> TransitionBatch:
        """A batch with zero rows and the right dtypes (with the behaviour fields or not)."""
        batch = TransitionBatch(
            obs_B=np.zeros((0, *obs_shape), dtype=obs_dtype),
            action_B=np.zeros(0, dtype=np.int64),
            return_B=np.zeros(0, dtype=np.float32),
            discount_B=np.zeros(0, dtype=np.float32),
            next_obs_B=np.zeros((0, *obs_shape), dtype=obs_dtype),
            done_B=np.zeros(0, dtype=bool),
            priority_B=np.zeros(0, dtype=np.float32),
        )
        if behaviour:
            batch.greedy_B = np.zeros(0, dtype=bool)
            batch.epsilon_B = np.zeros(0, dtype=np.float32)
            batch.steps_B = np.zeros(0, dtype=np.uint8)
            batch.later_greedy_B = np.zeros(0, dtype=np.uint8)
        return batch


BEHAVIOUR_FIELDS = ("greedy_B", "epsilon_B", "steps_B", "later_greedy_B")


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
class ShardSize:
    """One shard's size, capacity and bytes, as the run's metrics show them."""

    size: int
    capacity: int
    bytes: int


@dataclass
class ReplayTotals:
    """The replay as a learner sees it, summed over the shards that answered its latest call.

    Attributes:
        size, capacity, bytes: summed over the shards that reported.
        added: transitions ever inserted, across shard restarts.
        sampled: transitions the learners drew.
        shards: how many shards reported.
        per_shard: each shard's ``ShardSize`` (None while it is down).
    """

    size: int = 0
    capacity: int = 0
    added: int = 0
    sampled: int = 0
    bytes: int = 0
    shards: int = 0
    per_shard: list[ShardSize | None] = field(default_factory=list)

    @property
    def replay_ratio(self) -> float:
        """Samples drawn per transition inserted (0 before the first insert)."""
        return self.sampled / self.added if self.added else 0.0


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
        action_B, return_B, discount_B, done_B, priority_B, and the behaviour fields
            greedy_B, epsilon_B, steps_B, later_greedy_B (None unless
            ``learner.actor_correction``): as in ``TransitionBatch``.
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
    greedy_B: np.ndarray | None = None
    epsilon_B: np.ndarray | None = None
    steps_B: np.ndarray | None = None
    later_greedy_B: np.ndarray | None = None

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
