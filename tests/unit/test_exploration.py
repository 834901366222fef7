"""Tests for the Ape-X epsilon schedule, epsilon-greedy and the actor-mixture correction."""

from __future__ import annotations

import numpy as np
import pytest

from apex_dqn.algo.exploration import (
    BehaviourMixture,
    actor_epsilons,
    epsilon_greedy,
    mixture_correction_weights,
)


def test_actor_epsilons_ape_x_formula() -> None:
    eps_N = actor_epsilons(8)
    assert eps_N.shape == (8,)
    np.testing.assert_allclose(eps_N[0], 0.4)
    np.testing.assert_allclose(eps_N[7], 0.4**8)
    # eps_i = 0.4 ** (1 + 7 * i / 7) = 0.4 ** (1 + i) for N = 8
    np.testing.assert_allclose(eps_N, 0.4 ** (1.0 + np.arange(8)))
    assert np.all(np.diff(eps_N) < 0)


def test_actor_epsilons_single_actor_and_custom() -> None:
    np.testing.assert_allclose(actor_epsilons(1), [0.4])
    np.testing.assert_allclose(actor_epsilons(1, eps=0.2), [0.2])
    np.testing.assert_allclose(actor_epsilons(3, eps=0.5, alpha=2.0), [0.5, 0.25, 0.125])
    with pytest.raises(ValueError, match="num_actors"):
        actor_epsilons(0)


def test_epsilon_zero_is_always_argmax() -> None:
    rng = np.random.default_rng(0)
    q_NA = rng.normal(size=(500, 6))
    actions_N, greedy_N = epsilon_greedy(q_NA, 0.0, rng)
    assert actions_N.dtype == np.int64
    assert greedy_N.dtype == bool
    np.testing.assert_array_equal(actions_N, q_NA.argmax(axis=1))
    assert greedy_N.all()


def test_epsilon_one_is_roughly_uniform() -> None:
    rng = np.random.default_rng(1)
    num, num_actions = 20_000, 4
    q_NA = np.tile([0.0, 5.0, 1.0, 2.0], (num, 1))
    actions_N, greedy_N = epsilon_greedy(q_NA, 1.0, rng)
    freq_A = np.bincount(actions_N, minlength=num_actions) / num
    np.testing.assert_allclose(freq_A, 0.25, atol=0.015)
    # A random action equal to the argmax (action 1) still counts as greedy.
    np.testing.assert_array_equal(greedy_N, actions_N == 1)


def test_epsilon_greedy_mix_rate() -> None:
    rng = np.random.default_rng(2)
    q_NA = np.tile([0.0, 1.0], (20_000, 1))
    _, greedy_N = epsilon_greedy(q_NA, 0.3, rng)
    # P(greedy) = 1 - eps + eps / A = 0.85
    assert abs(greedy_N.mean() - 0.85) < 0.015


def _observed_mixture(clip: float) -> BehaviourMixture:
    """Three actors, eps (0.4, 0.1, 0.01), seen in a batch with shares (0.5, 0.25, 0.25)."""
    mixture = BehaviourMixture(np.array([0.4, 0.1, 0.01]), num_actions=4, clip=clip)
    # float32 epsilons as stored in a batch, matched to the actors by nearest value.
    mixture.observe(np.array([0.4, 0.1, 0.4, 0.01], dtype=np.float32))
    np.testing.assert_allclose(mixture.shares(), [0.5, 0.25, 0.25])
    return mixture


def test_mixture_weight_hand_computed() -> None:
    mixture = _observed_mixture(clip=np.inf)
    # Actor 1 (eps 0.1), m = 3: a_{t+1}, a_{t+2} are one greedy and one random action.
    weights_B = mixture.weights(
        np.array([0.1, 0.1], np.float32), np.array([3, 3], np.uint8), np.array([1, 1], np.uint8)
    )
    assert weights_B.dtype == np.float32
    # e_mix = 0.5 * 0.4 + 0.25 * 0.1 + 0.25 * 0.01 = 0.2 + 0.025 + 0.0025 = 0.2275
    # greedy: mu_mix = 0.7725 + 0.2275 / 4 = 0.829375, mu_1 = 0.9 + 0.1 / 4 = 0.925
    # random: mu_mix = 0.2275 / 4 = 0.056875, mu_1 = 0.1 / 4 = 0.025
    # w = (0.829375 / 0.925) * (0.056875 / 0.025) = 0.8966216... * 2.275 = 2.0398142...
    np.testing.assert_allclose(weights_B, [2.0398142, 2.0398142], rtol=1e-6)


def test_mixture_weight_clipped_at_one() -> None:
    mixture = _observed_mixture(clip=1.0)
    weights_B = mixture.weights(
        np.array([0.1, 0.4, 0.4], np.float32),
        np.array([3, 3, 2], np.uint8),
        np.array([1, 1, 0], np.uint8),
    )
    # Row 0 is 2.0398 before truncation. Actor 0 (eps 0.4), one greedy + one random:
    # (0.829375 / (0.6 + 0.1)) * (0.2275 / 0.4) = 1.1848214... * 0.56875 = 0.6738672...
    # and one random only: 0.2275 / 0.4 = 0.56875; no floor, values below 1 stay as they are.
    np.testing.assert_allclose(weights_B, [1.0, 0.6738672, 0.56875], rtol=1e-6)


def test_one_step_transitions_weigh_one() -> None:
    mixture = _observed_mixture(clip=np.inf)
    weights_B = mixture.weights(
        np.array([0.4, 0.1, 0.01], np.float32), np.ones(3, np.uint8), np.zeros(3, np.uint8)
    )
    np.testing.assert_array_equal(weights_B, [1.0, 1.0, 1.0])


def test_shares_uniform_before_observation_then_decayed() -> None:
    mixture = BehaviourMixture(np.array([0.4, 0.1, 0.01]), num_actions=4, decay=0.5, clip=np.inf)
    np.testing.assert_allclose(mixture.shares(), [1 / 3, 1 / 3, 1 / 3])
    # e_mix = (0.4 + 0.1 + 0.01) / 3 = 0.17; actor 1, m = 2, a_{t+1} random: 0.17 / 0.1 = 1.7
    weights_B = mixture.weights(np.array([0.1]), np.array([2]), np.array([0]))
    np.testing.assert_allclose(weights_B, [1.7], rtol=1e-6)
    # Nearest match: 0.3 -> 0.4, 0.02 -> 0.01. Counts [1, 0, 1], then halved: [0.5, 0, 0.5]
    # plus the second batch [0, 2, 0]: shares [0.5, 2, 0.5] / 3.
    mixture.observe(np.array([0.3, 0.02]))
    mixture.observe(np.array([0.11, 0.09]))
    np.testing.assert_allclose(mixture.shares(), [0.5 / 3, 2 / 3, 0.5 / 3])


def test_zero_epsilon_actor_never_divides_by_zero() -> None:
    # An eps = 0 actor cannot take a non-greedy action; if a row claims one, its ratio is 1.
    with np.errstate(all="raise"):
        weights_B = mixture_correction_weights(
            np.array([0.0, 0.0]),
            np.array([2, 2]),
            np.array([0, 1]),
            all_epsilons=np.array([0.0, 0.5]),
            shares=np.array([0.5, 0.5]),
            num_actions=2,
            clip=np.inf,
        )
    # e_mix = 0.25; greedy: (0.75 + 0.125) / 1 = 0.875
    np.testing.assert_allclose(weights_B, [1.0, 0.875], rtol=1e-6)


def test_mixture_rejects_bad_arguments() -> None:
    with pytest.raises(ValueError, match="decay"):
        BehaviourMixture(np.array([0.1]), num_actions=2, decay=0.0)
    with pytest.raises(ValueError, match="clip"):
        BehaviourMixture(np.array([0.1]), num_actions=2, clip=0.0)
    with pytest.raises(ValueError, match="epsilon"):
        BehaviourMixture(np.array([]), num_actions=2)
