"""The Evaluator: greedy (or epsilon-greedy) episodes with given weights, as one vector env.

Evaluation is separate from acting so that reported returns are those of the greedy policy, not
of the exploring actors. ``episodes`` environments run side by side, each for exactly one episode;
their mean undiscounted return is the figure compared with the target.
"""

from __future__ import annotations

import numpy as np

from apex_dqn.algo.acting_q import build_acting_q
from apex_dqn.algo.exploration import epsilon_greedy
from apex_dqn.config import EnvConfig, NetworkConfig
from apex_dqn.core.reports import EvalResult
from apex_dqn.core.seeding import env_seeds
from apex_dqn.envs.factory import make_vector_env


class Evaluator:
    """Greedy evaluation of Q-network weights (see module docstring).

    Args:
        env: the environment.
        network: the Q-network architecture.
        obs_shape: shape of one observation.
        num_actions: size of the action space.
        episodes: episodes per evaluation, run in parallel.
        seed: base seed; evaluation k resets its envs with ``seeding.env_seeds(seed, episodes,
            k)``: new episodes every time.
        epsilon: chance of a uniformly random action at each step (0: greedy).
        confirm_at: a return (the run's target) at or above which an evaluation is repeated
            on new episodes before it counts: one lucky set of episodes must not end a run.
        evaluations_done: evaluations an earlier evaluator of this run already played (a
            replacement after an env error starts on the next seeds).
        vector_mode: how the envs are stepped, as ``actors.vector_mode``: "ale" plays ale-py's
            C++ vector env, exactly what actors with that mode train on; "sync" and "async"
            (the same gymnasium envs) play a sync vector env.
    """

    def __init__(
        self,
        *,
        env: EnvConfig,
        network: NetworkConfig,
        obs_shape: tuple[int, ...],
        num_actions: int,
        episodes: int,
        seed: int,
        epsilon: float = 0.0,
        confirm_at: float | None = None,
        evaluations_done: int = 0,
        vector_mode: str = "sync",
    ) -> None:
        self._confirm_at = confirm_at
        self._episodes = episodes
        self._epsilon = float(epsilon)
        self._rng = np.random.default_rng(seed)
        self._seed = seed
        self._count = evaluations_done
        # numpy for MLPs (see apex_dqn.algo.acting_q); weights come with every evaluate call.
        self._net = build_acting_q(network, obs_shape=obs_shape, num_actions=num_actions, seed=seed)
        mode = "ale" if vector_mode == "ale" else "sync"
        self._envs = make_vector_env(env, num_envs=episodes, mode=mode)

    @property
    def evaluations(self) -> int:
        """Sets of episodes played so far (confirmations included)."""
        return self._count

    def evaluate(
        self, weights: dict[str, np.ndarray], version: int, confirm: bool = True
    ) -> EvalResult:
        """Run one greedy episode in each env with ``weights``; return the statistics (and,
        when they reach ``confirm_at`` and ``confirm`` is set, the mean of a second set of
        episodes)."""
        self._net.set_weights(weights)
        result = self._play(version)
        reached = self._confirm_at is not None and result.mean_return >= self._confirm_at
        if confirm and reached:
            second = self._play(version)
            result.confirm_return, result.confirm_returns = second.mean_return, second.returns
        return result

    def _play(self, version: int) -> EvalResult:
        """One episode in each env with the loaded weights, on seeds not used before."""
        obs_N, _ = self._envs.reset(seed=env_seeds(self._seed, self._episodes, self._count))
        self._count += 1
        n = self._episodes
        returns_N = np.zeros(n)
        lengths_N = np.zeros(n, dtype=np.int64)
        running_N = np.ones(n, dtype=bool)
        while running_N.any():
            action_N, _ = epsilon_greedy(self._net.q_values(obs_N), self._epsilon, self._rng)
            obs_N, reward_N, term_N, trunc_N, _ = self._envs.step(action_N)
            returns_N += np.where(running_N, reward_N, 0.0)
            lengths_N += running_N
            running_N &= ~(term_N | trunc_N)
        return EvalResult(
            mean_return=float(returns_N.mean()),
            std_return=float(returns_N.std()),
            min_return=float(returns_N.min()),
            max_return=float(returns_N.max()),
            mean_length=float(lengths_N.mean()),
            weights_version=int(version),
            episodes=n,
            returns=[float(r) for r in returns_N],
        )

    def close(self) -> None:
        """Close the environments."""
        self._envs.close()
