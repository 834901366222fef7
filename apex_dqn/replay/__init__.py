"""Prioritized experience replay: the sum tree and one replay shard (numpy only, no Ray)."""

from apex_dqn.replay.prioritized import PrioritizedReplay, importance_weights
from apex_dqn.replay.sum_tree import SumTree

__all__ = ["PrioritizedReplay", "SumTree", "importance_weights"]
