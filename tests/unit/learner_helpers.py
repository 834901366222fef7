"""Learner test fixtures shared by several test modules: CartPole-shaped batches and a small
learner."""

from __future__ import annotations

import numpy as np

from apex_dqn.algo.learner import Learner
from apex_dqn.config import AlgoConfig, LearnerConfig, NetworkConfig, ReplayConfig
from apex_dqn.core.types import TransitionBatch


def cartpole_batch(n: int = 64, seed: int = 0, *, behaviour: bool = False) -> TransitionBatch:
    """A random batch of ``n`` CartPole-shaped transitions; with ``behaviour``, also the fields
    that ``learner.actor_correction`` needs."""
    rng = np.random.default_rng(seed)
    batch = TransitionBatch(
        obs_B=rng.normal(size=(n, 4)).astype(np.float32),
        action_B=rng.integers(0, 2, n).astype(np.int64),
        return_B=rng.normal(size=n).astype(np.float32),
        discount_B=np.full(n, 0.99**3, np.float32),
        next_obs_B=rng.normal(size=(n, 4)).astype(np.float32),
        done_B=np.ones(n, bool),  # terminal: the target is the return itself
        priority_B=np.ones(n, np.float32),
    )
    if behaviour:
        batch.greedy_B = rng.random(n) < 0.5
        batch.epsilon_B = np.full(n, 0.4, np.float32)
        batch.steps_B = np.full(n, 3, np.uint8)
        batch.later_greedy_B = rng.integers(0, 3, n).astype(np.uint8)
    return batch


def frames_batch(
    n: int, seed: int, obs_shape: tuple[int, ...], num_actions: int, *, behaviour: bool = False
) -> TransitionBatch:
    """A random batch of ``n`` transitions of uint8 frame stacks (Atari-shaped for the nature
    torso); with ``behaviour``, greedy actions of actors at epsilon 0.1 over 3-step returns."""
    rng = np.random.default_rng(seed)
    batch = TransitionBatch(
        obs_B=rng.integers(0, 255, (n, *obs_shape), dtype=np.uint8),
        action_B=rng.integers(0, num_actions, n).astype(np.int64),
        return_B=rng.normal(size=n).astype(np.float32),
        discount_B=np.full(n, 0.99**3, np.float32),
        next_obs_B=rng.integers(0, 255, (n, *obs_shape), dtype=np.uint8),
        done_B=rng.random(n) < 0.1,
        priority_B=np.ones(n, np.float32),
    )
    if behaviour:
        batch.greedy_B = np.ones(n, bool)
        batch.epsilon_B = np.full(n, 0.1, np.float32)
        batch.steps_B = np.full(n, 3, np.uint8)
        batch.later_greedy_B = np.full(n, 2, np.uint8)
    return batch


def small_learner(**learner_overrides) -> Learner:
    return Learner(
        obs_shape=(4,),
        num_actions=2,
        network=NetworkConfig(hidden_sizes=[32, 32]),
        algo=AlgoConfig(),
        learner=LearnerConfig(**{"device": "cpu", **learner_overrides}),
        replay=ReplayConfig(beta_anneal_steps=100),
        actor_epsilons=np.array([0.4, 0.1]),
        seed=0,
    )
