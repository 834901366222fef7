"""N-step transition building for vector environments.

This module owns the conversion of one-step experience from N lock-stepped environments into
n-step transitions (Sutton & Barto, ch. 7): the discounted return of up to n rewards, the
discount gamma^m to apply to the bootstrap value, and the observation m steps later. Pending
steps live in per-env ring arrays of shape [N, n, ...], so the common path (every env in the middle
of an episode) is vectorized over envs with no Python loop over transitions. When an env's episode
ends, all its pending starts are flushed with fewer than n rewards and the env starts afresh, so
transitions never mix episodes or envs. Numpy only: no torch, no Ray.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from apex_dqn.core.types import TransitionBatch


@dataclass
class Rows:
    """Where the rows of a batch from ``NStepBuilder.step_rows`` came from.

    Attributes:
        env_B: the env index of each row (int64).
        value_B: the ``value_N`` entry passed with the row's first step (float64).
        obs_keys_B: the ``obs_keys_N`` entry of the row's first step (None when not given).
        next_keys_B: the ``next_keys_N`` entry of the row's last step (None when not given).
    """

    env_B: np.ndarray
    value_B: np.ndarray
    obs_keys_B: np.ndarray | None = None
    next_keys_B: np.ndarray | None = None


class NStepBuilder:
    """Turns lock-stepped vector-env steps into n-step transitions.

    The caller passes, per step, the TRUE next observation for every env: for an env whose
    episode ended at this step, the final observation (gymnasium's SAME_STEP autoreset mode puts
    it in ``infos``), not the reset one. The observation it passes for that env at the next step
    is the first of a new episode.

    Rows are returned in a fixed order: first the full n-step windows (ascending env index), then
    the flushed starts of envs whose episode ended (ascending env index, oldest start first).
    """

    def __init__(
        self,
        *,
        num_envs: int,
        n: int,
        gamma: float,
        obs_shape: tuple[int, ...],
        obs_dtype: np.dtype | type = np.float32,
        behaviour: bool = False,
    ) -> None:
        """Allocates the ring arrays.

        Args:
            num_envs: number of environments N stepped together, >= 1.
            n: the most rewards summed per transition, in [1, 255] (1 gives one-step
                transitions; ``steps_B`` is uint8).
            gamma: discount factor per step, in [0, 1].
            obs_shape: shape of one observation.
            obs_dtype: dtype observations are stored and returned in (uint8 for Atari frames).
            behaviour: give each transition the behaviour fields (greedy, epsilon, steps, later
                greedy actions) that ``learner.actor_correction`` needs; None otherwise.

        Raises:
            ValueError: if an argument is out of range.
        """
        if num_envs < 1 or not 1 <= n <= 255:
            raise ValueError(f"need num_envs >= 1, n in [1, 255], got num_envs={num_envs}, n={n}")
        if not 0.0 <= gamma <= 1.0:
            raise ValueError(f"gamma must be in [0, 1], got {gamma}")
        self._num_envs = num_envs
        self._n = n
        self._gamma = float(gamma)
        self._obs_shape = tuple(obs_shape)
        self._obs_dtype = np.dtype(obs_dtype)
        self._behaviour = bool(behaviour)
        # gamma^k for k < n, the weights of an n-step return.
        self._powers_K = self._gamma ** np.arange(n, dtype=np.float64)
        self._obs_NK = np.zeros((num_envs, n, *self._obs_shape), dtype=self._obs_dtype)
        self._action_NK = np.zeros((num_envs, n), dtype=np.int64)
        self._reward_NK = np.zeros((num_envs, n), dtype=np.float64)
        self._greedy_NK = np.zeros((num_envs, n), dtype=bool)
        self._value_NK = np.zeros((num_envs, n), dtype=np.float64)
        self._keys_NK: np.ndarray | None = None  # allocated on the first step that has keys
        self._next_keys_N: np.ndarray | None = None
        # All envs write to the same ring slot each step; count_N says how many of the most
        # recent slots hold pending starts of the env's current episode.
        self._count_N = np.zeros(num_envs, dtype=np.int64)
        self._slot = -1

    def reset(self) -> None:
        """Drops all pending steps (e.g. after the caller resets the environments)."""
        self._count_N[:] = 0

    def pending(self) -> int:
        """The number of steps held that have not yet been emitted, over all envs."""
        return int(self._count_N.sum())

    def step(self, **step: Any) -> TransitionBatch:
        """``step_rows`` (same keyword arguments) without the rows' origins: the transitions
        this step completes."""
        return self.step_rows(**step)[0]

    def step_rows(
        self,
        *,
        obs_N: np.ndarray,
        action_N: np.ndarray,
        reward_N: np.ndarray,
        next_obs_N: np.ndarray,
        terminated_N: np.ndarray,
        truncated_N: np.ndarray,
        greedy_N: np.ndarray,
        epsilon: float,
        value_N: np.ndarray | None = None,
        obs_keys_N: np.ndarray | None = None,
        next_keys_N: np.ndarray | None = None,
    ) -> tuple[TransitionBatch, Rows]:
        """Records one vector-env step and returns the transitions it completes.

        Args:
            obs_N: observations s_t, shape [N, *obs_shape].
            action_N: actions a_t taken, shape [N].
            reward_N: rewards r_t, shape [N].
            next_obs_N: true next observations s_{t+1} (final observations for envs that ended),
                shape [N, *obs_shape].
            terminated_N: episode reached a terminal state (no bootstrap), shape [N].
            truncated_N: episode was cut short, e.g. by a time limit (still bootstraps), shape [N].
            greedy_N: whether a_t was the greedy action, shape [N].
            epsilon: the exploration epsilon that chose the actions.
            value_N: optional per-env scalar of this step carried along to its transition's
                row (the actor passes Q(s_t, a_t), so that priorities need no second forward
                pass); zeros when omitted.
            obs_keys_N: optional per-env array (e.g. the keys of the frames stacked in s_t,
                [N, S]) carried to the row of the transition that starts at this step.
            next_keys_N: the same for the true next observations, [N, S]; required with
                ``obs_keys_N``.

        Returns:
            The completed transitions, possibly zero rows (``priority_B`` all zeros), and for
            each row its env and its ``value_N`` entry.
        """
        if obs_N.shape != (self._num_envs, *self._obs_shape):
            raise ValueError(
                f"obs_N has shape {obs_N.shape}, expected {(self._num_envs, *self._obs_shape)}"
            )
        self._slot = (self._slot + 1) % self._n
        self._obs_NK[:, self._slot] = obs_N
        self._action_NK[:, self._slot] = action_N
        self._reward_NK[:, self._slot] = reward_N
        self._greedy_NK[:, self._slot] = greedy_N
        self._value_NK[:, self._slot] = 0.0 if value_N is None else value_N
        self._next_keys_N = next_keys_N
        if obs_keys_N is not None:
            if self._keys_NK is None:
                self._keys_NK = np.zeros((self._num_envs, self._n, *obs_keys_N.shape[1:]), np.int64)
            self._keys_NK[:, self._slot] = obs_keys_N
        # Every env holds at most n - 1 pending starts between steps, so this stays <= n.
        self._count_N += 1

        terminated_N = np.asarray(terminated_N, dtype=bool)
        ended_N = terminated_N | np.asarray(truncated_N, dtype=bool)
        parts = [self._emit_full(np.flatnonzero(~ended_N & (self._count_N == self._n)), next_obs_N)]
        for env in np.flatnonzero(ended_N):
            parts.append(self._flush(int(env), next_obs_N[env], bool(terminated_N[env])))
        batch = TransitionBatch.concatenate([b for b, _ in parts])
        if batch.epsilon_B is not None:
            batch.epsilon_B[:] = epsilon
        rows = Rows(
            env_B=np.concatenate([r.env_B for _, r in parts]),
            value_B=np.concatenate([r.value_B for _, r in parts]),
        )
        if obs_keys_N is not None:
            assert next_keys_N is not None and self._keys_NK is not None
            rows.obs_keys_B = np.concatenate([r.obs_keys_B for _, r in parts])  # type: ignore[misc]
            rows.next_keys_B = np.concatenate([r.next_keys_B for _, r in parts])  # type: ignore[misc]
        return batch, rows

    def _emit_full(
        self, envs_E: np.ndarray, next_obs_N: np.ndarray
    ) -> tuple[TransitionBatch, Rows]:
        """Emits the oldest pending start of each env in ``envs_E``, all holding n steps."""
        # Chronological slot order of a full window: the oldest slot is the one after the newest.
        order_K = (self._slot + 1 + np.arange(self._n)) % self._n
        oldest = order_K[0]
        # G = sum_{k<n} gamma^k r_{t+k}
        return_E = self._reward_NK[envs_E][:, order_K] @ self._powers_K
        # Greedy actions among a_{t+1} .. a_{t+n-1}: every slot of the window but the oldest.
        later_greedy_E = self._greedy_NK[envs_E][:, order_K[1:]].sum(axis=1)
        self._count_N[envs_E] -= 1
        num = envs_E.shape[0]
        rows = Rows(env_B=envs_E, value_B=self._value_NK[envs_E, oldest])
        if self._keys_NK is not None and self._next_keys_N is not None:
            rows.obs_keys_B = self._keys_NK[envs_E, oldest]
            rows.next_keys_B = np.asarray(self._next_keys_N)[envs_E]
        return self._batch(
            obs_B=self._obs_NK[envs_E, oldest],
            action_B=self._action_NK[envs_E, oldest],
            return_B=return_E,
            discount_B=np.full(num, self._gamma**self._n),
            next_obs_B=np.asarray(next_obs_N, dtype=self._obs_dtype)[envs_E],
            done_B=np.zeros(num, dtype=bool),
            greedy_B=self._greedy_NK[envs_E, oldest],
            steps_B=np.full(num, self._n),
            later_greedy_B=later_greedy_E,
        ), rows

    def _flush(
        self, env: int, final_obs: np.ndarray, terminated: bool
    ) -> tuple[TransitionBatch, Rows]:
        """Emits every pending start of ``env``, whose episode ended at this step."""
        count = int(self._count_N[env])
        # Slots of the pending starts, oldest first; start j sums m_j = count - j rewards.
        order_C = (self._slot - count + 1 + np.arange(count)) % self._n
        reward_C = self._reward_NK[env, order_C]
        return_C = np.zeros(count, dtype=np.float64)
        acc = 0.0
        for j in range(count - 1, -1, -1):
            # G_j = r_j + gamma * G_{j+1}, computed backwards from the final reward.
            acc = reward_C[j] + self._gamma * acc
            return_C[j] = acc
        # Start j's later actions are the actions of starts j + 1 .. count - 1: a suffix sum
        # minus its own.
        greedy_C = self._greedy_NK[env, order_C].astype(np.int64)
        later_greedy_C = np.cumsum(greedy_C[::-1])[::-1] - greedy_C
        self._count_N[env] = 0
        rows = Rows(env_B=np.full(count, env, dtype=np.int64), value_B=self._value_NK[env, order_C])
        if self._keys_NK is not None and self._next_keys_N is not None:
            rows.obs_keys_B = self._keys_NK[env, order_C]
            rows.next_keys_B = np.repeat(np.asarray(self._next_keys_N)[env][None], count, 0)
        return self._batch(
            obs_B=self._obs_NK[env, order_C],
            action_B=self._action_NK[env, order_C],
            return_B=return_C,
            discount_B=self._gamma ** np.arange(count, 0, -1, dtype=np.float64),
            next_obs_B=np.repeat(np.asarray(final_obs, dtype=self._obs_dtype)[None], count, 0),
            done_B=np.full(count, terminated),
            greedy_B=self._greedy_NK[env, order_C],
            steps_B=np.arange(count, 0, -1),
            later_greedy_B=later_greedy_C,
        ), rows

    def _batch(self, **arrays: np.ndarray) -> TransitionBatch:
        """A TransitionBatch with the project's dtypes; priority (and epsilon) set to zero."""
        num = arrays["action_B"].shape[0]
        batch = TransitionBatch(
            obs_B=arrays["obs_B"].astype(self._obs_dtype, copy=False),
            action_B=arrays["action_B"].astype(np.int64, copy=False),
            return_B=arrays["return_B"].astype(np.float32),
            discount_B=arrays["discount_B"].astype(np.float32),
            next_obs_B=arrays["next_obs_B"].astype(self._obs_dtype, copy=False),
            done_B=arrays["done_B"].astype(bool, copy=False),
            priority_B=np.zeros(num, dtype=np.float32),
        )
        if self._behaviour:
            batch.greedy_B = arrays["greedy_B"].astype(bool, copy=False)
            batch.epsilon_B = np.zeros(num, dtype=np.float32)
            batch.steps_B = arrays["steps_B"].astype(np.uint8)
            batch.later_greedy_B = arrays["later_greedy_B"].astype(np.uint8)
        return batch
