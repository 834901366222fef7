"""Exploration policies of the actors and the off-policy correction between them.

This module owns the Ape-X exploration schedule (Horgan et al., 2018: actor i of N explores with
eps_i = eps ** (1 + alpha * i / (N - 1))), epsilon-greedy action selection over a batch of
Q-values, and the importance ratio that reweights a transition from one actor's behaviour
policy to the mixture of all actors' behaviour policies. Numpy only, RNG passed explicitly.
"""

from __future__ import annotations

import numpy as np


def actor_epsilons(num_actors: int, *, eps: float = 0.4, alpha: float = 7.0) -> np.ndarray:
    """The Ape-X per-actor exploration rates.

    Args:
        num_actors: number of actors N, >= 1.
        eps: base epsilon in [0, 1]; actor 0 explores with exactly this rate.
        alpha: spread exponent >= 0; the last actor explores with eps ** (1 + alpha).

    Returns:
        Float64 array of shape [N], eps_i = eps ** (1 + alpha * i / (N - 1)); [eps] when N == 1.

    Raises:
        ValueError: if an argument is out of range.
    """
    if num_actors < 1:
        raise ValueError(f"num_actors must be >= 1, got {num_actors}")
    if not 0.0 <= eps <= 1.0 or alpha < 0.0:
        raise ValueError(f"need eps in [0, 1] and alpha >= 0, got eps={eps}, alpha={alpha}")
    if num_actors == 1:
        return np.array([eps], dtype=np.float64)
    i_N = np.arange(num_actors, dtype=np.float64)
    return eps ** (1.0 + alpha * i_N / (num_actors - 1))


def epsilon_greedy(
    q_NA: np.ndarray, epsilon: float, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """Epsilon-greedy actions for a batch of Q-values.

    With probability ``epsilon`` an action is drawn uniformly from all A actions (the greedy one
    included), otherwise the argmax (first index on ties) is taken.

    Args:
        q_NA: Q-values, shape [N, A].
        epsilon: probability of a uniform random action, in [0, 1].
        rng: source of randomness.

    Returns:
        (actions_N int64, greedy_N bool): the actions, and whether each equals the argmax (a
        random action that happens to equal the argmax counts as greedy).
    """
    num, num_actions = q_NA.shape
    argmax_N = np.argmax(q_NA, axis=1).astype(np.int64)
    explore_N = rng.random(num) < epsilon
    random_N = rng.integers(num_actions, size=num, dtype=np.int64)
    actions_N = np.where(explore_N, random_N, argmax_N)
    return actions_N, actions_N == argmax_N


def actor_correction_weights(
    greedy_B: np.ndarray,
    epsilon_B: np.ndarray,
    *,
    all_epsilons: np.ndarray,
    num_actions: int,
) -> np.ndarray:
    """Importance ratios mu_mix(a|s) / mu_i(a|s) from each sample's actor to the actor mixture.

    A transition came from actor i with epsilon-greedy policy
    mu_i(a|s) = (1 - eps_i) * [a greedy] + eps_i / A. The replay as a whole holds data from the
    uniform mixture mu_mix(a|s) = mean_j mu_j(a|s). Multiplying a sample's loss by this ratio
    reweights it from its own actor's policy to that mixture.

    Approximation: each actor acts greedily w.r.t. its own, possibly stale, copy of the network,
    so the actors' greedy actions may differ. We assume they all share the greedy action of the
    actor that produced the sample (``greedy_B``), which makes the ratio depend only on whether
    a_t was greedy and on the epsilons, not on the other actors' Q-values (which we do not have).

    Args:
        greedy_B: whether a_t was its actor's greedy action, shape [B].
        epsilon_B: the epsilon of the actor that produced each sample, shape [B].
        all_epsilons: the epsilons of all actors in the mixture, shape [J].
        num_actions: number of actions A, >= 1.

    Returns:
        Float32 ratios, shape [B].
    """
    greedy_B = np.asarray(greedy_B, dtype=bool)
    eps_B = np.asarray(epsilon_B, dtype=np.float64)
    eps_J = np.asarray(all_epsilons, dtype=np.float64)
    # mu_i = (1 - eps_i) * greedy + eps_i / A
    mu_actor_B = (1.0 - eps_B) * greedy_B + eps_B / num_actions
    # mu_mix = mean_j[(1 - eps_j) * greedy + eps_j / A]
    mu_mix_B = (1.0 - eps_J.mean()) * greedy_B + eps_J.mean() / num_actions
    return (mu_mix_B / mu_actor_B).astype(np.float32)
