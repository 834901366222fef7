"""Tests for the Ape-X epsilon schedule, epsilon-greedy and the actor-mixture correction."""

from __future__ import annotations

import numpy as np
import pytest

from apex_dqn.exploration import actor_correction_weights, actor_epsilons, epsilon_greedy


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


def test_actor_correction_hand_computed() -> None:
    all_eps = np.array([0.5, 0.1])
    weights_B = actor_correction_weights(
        np.array([True, False, True, False]),
        np.array([0.5, 0.1, 0.1, 0.5]),
        all_epsilons=all_eps,
        num_actions=2,
    )
    assert weights_B.dtype == np.float32
    # greedy from actor 0: mu_0 = 0.5 + 0.25 = 0.75, mu_mix = (0.75 + 0.95) / 2 = 0.85
    # non-greedy from actor 1: mu_1 = 0.05, mu_mix = (0.25 + 0.05) / 2 = 0.15
    # greedy from actor 1: mu_1 = 0.95; non-greedy from actor 0: mu_0 = 0.25
    expected = [0.85 / 0.75, 0.15 / 0.05, 0.85 / 0.95, 0.15 / 0.25]
    np.testing.assert_allclose(weights_B, expected, rtol=1e-6)


def test_actor_correction_is_one_for_a_single_actor() -> None:
    weights_B = actor_correction_weights(
        np.array([True, False]), np.array([0.3, 0.3]), all_epsilons=np.array([0.3]), num_actions=5
    )
    np.testing.assert_allclose(weights_B, [1.0, 1.0], rtol=1e-6)
