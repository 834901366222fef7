"""Layer 2, prioritized experience replay: the sum tree and one shard (numpy only, no Ray)."""

from typing import Any

from apex_dqn.replay.frames import FramePrioritizedReplay
from apex_dqn.replay.prioritized import PrioritizedReplay, importance_weights
from apex_dqn.replay.sum_tree import SumTree

__all__ = [
    "FramePrioritizedReplay",
    "PrioritizedReplay",
    "SumTree",
    "importance_weights",
    "make_replay",
]


def make_replay(*, frames: bool = False, **kwargs: Any) -> PrioritizedReplay:
    """A ``FramePrioritizedReplay`` when ``frames`` (actors push ``FrameBatch``), else a plain
    ``PrioritizedReplay``; ``kwargs`` go to the constructor."""
    return FramePrioritizedReplay(**kwargs) if frames else PrioritizedReplay(**kwargs)
