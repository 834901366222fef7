"""Fault injection: environments that raise, for the fault-tolerance tests and the soak benchmark.

Importing this module registers two CartPole variants with gymnasium; use them through the
``module:id`` form, which imports the module in every process that makes the environment
(actors and evaluator included)::

    apex-dqn env.id=apex_dqn.envs.chaos:FlakyCartPole-v1    # raises now and then: reset and counted
    apex-dqn env.id=apex_dqn.envs.chaos:BrokenCartPole-v1   # raises on every step: the run stops
"""

from __future__ import annotations

from typing import Any

import gymnasium as gym


class InjectedEnvError(RuntimeError):
    """The error a chaos environment raises."""


class RaisingWrapper(gym.Wrapper):
    """Raises ``InjectedEnvError`` on every ``fail_every``-th step of this environment."""

    def __init__(self, env: gym.Env, fail_every: int) -> None:
        super().__init__(env)
        self.fail_every = fail_every
        self._steps = 0

    def step(self, action: Any) -> Any:
        self._steps += 1
        if self._steps % self.fail_every == 0:
            raise InjectedEnvError(f"injected failure at step {self._steps} of this environment")
        return self.env.step(action)


def make_raising_cartpole(fail_every: int, **kwargs: Any) -> gym.Env:
    """CartPole-v1 (its own time limit) that raises every ``fail_every`` steps."""
    return RaisingWrapper(gym.make("CartPole-v1", **kwargs), fail_every=fail_every)


for _name, _every in (("FlakyCartPole-v1", 1_500), ("BrokenCartPole-v1", 1)):
    if _name not in gym.registry:
        gym.register(
            id=_name,
            entry_point="apex_dqn.envs.chaos:make_raising_cartpole",
            kwargs={"fail_every": _every},
            reward_threshold=475.0,
            disable_env_checker=True,
        )
