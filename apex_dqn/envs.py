"""Environment factories and the checks that an environment fits apex-dqn.

Actors and the evaluator step gymnasium vector environments in lock-step. We use gymnasium's own
vector envs with the SAME_STEP autoreset mode: on the step where an episode ends, the true final
observation is in ``infos["final_obs"]`` (needed for n-step bootstrapping) and the returned
observation is already the first one of the next episode.

Atari games (``env.atari`` set) are made with ``frameskip=1`` and wrapped in gymnasium's
``AtariPreprocessing`` and ``FrameStackObservation`` (DeepMind preprocessing; PITFALLS.md 14).
Life loss and reward clipping are training signals only: the actor derives them from the env's
``lives`` info and the raw rewards (``life_lost``, ``training_rewards``), so the environment
itself always plays whole games and reports unclipped returns.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium.vector import AsyncVectorEnv, AutoresetMode, SyncVectorEnv, VectorEnv

from apex_dqn.config import AtariConfig, ConfigError, EnvConfig

VECTOR_MODES = ("sync", "async")


@dataclass(frozen=True)
class EnvInfo:
    """What the rest of the system needs to know about an environment.

    Attributes:
        obs_shape: shape of one observation.
        obs_dtype: numpy dtype name of observations.
        num_actions: size of the Discrete action space.
        reward_threshold: the spec's "solved" return, or None when it has none.
    """

    obs_shape: tuple[int, ...]
    obs_dtype: str
    num_actions: int
    reward_threshold: float | None


def _register_ale() -> None:
    """Make the ALE/... ids known to gymnasium (ale-py ships the ROMs)."""
    try:
        import ale_py
    except ImportError:
        raise ConfigError(
            "env=atari needs ale-py (and OpenCV for the preprocessing): "
            "pip install 'apex-dqn[atari]'"
        ) from None
    gym.register_envs(ale_py)


def make_env(cfg: EnvConfig, render_mode: str | None = None) -> gym.Env:
    """One environment as ``cfg`` describes it (Atari preprocessing included when set).

    A module-level function, so that an async vector env can pickle it for its subprocesses.
    ``render_mode`` (e.g. "rgb_array" for videos) goes to ``gym.make``.
    """
    kwargs: dict[str, Any] = {}
    if cfg.max_episode_steps is not None:
        kwargs["max_episode_steps"] = cfg.max_episode_steps
    if render_mode is not None:
        kwargs["render_mode"] = render_mode
    if cfg.atari is None:
        return gym.make(cfg.id, **kwargs)
    return _make_atari(cfg.id, cfg.atari, kwargs)


def _make_atari(env_id: str, atari: AtariConfig, kwargs: dict[str, Any]) -> gym.Env:
    from gymnasium.wrappers import AtariPreprocessing, FrameStackObservation

    _register_ale()
    if "max_episode_steps" in kwargs:  # the time limit counts agent steps; ALE counts frames
        kwargs = {**kwargs, "max_episode_steps": kwargs["max_episode_steps"] * atari.frame_skip}
    env = gym.make(
        env_id,
        frameskip=1,  # AtariPreprocessing skips (and max-pools) frames itself
        repeat_action_probability=atari.repeat_action_probability,
        full_action_space=atari.full_action_space,
        **kwargs,
    )
    env = AtariPreprocessing(
        env,
        noop_max=atari.noop_max,
        frame_skip=atari.frame_skip,
        screen_size=atari.screen_size,
        terminal_on_life_loss=False,  # life loss is a training signal only (life_lost)
        grayscale_obs=True,
        scale_obs=False,  # uint8 frames: 4x less memory and transport than float32
    )
    return FrameStackObservation(env, atari.frame_stack)


def _open(cfg: EnvConfig) -> gym.Env:
    """``make_env`` with gymnasium and ale-py errors turned into ConfigError naming env.id."""
    try:
        return make_env(cfg)
    except gym.error.Error as exc:
        hint = (
            "an ALE id such as ALE/Pong-v5 or ALE/Breakout-v5"
            if cfg.atari is not None
            else "an id from gymnasium.registry, e.g. CartPole-v1, Acrobot-v1, MountainCar-v0, "
            "LunarLander-v3 (Atari games: env=atari env.id=ALE/Pong-v5)"
        )
        raise ConfigError(
            f"env.id={cfg.id!r} is not a registered gymnasium environment ({exc}). Use {hint}"
        ) from None
    except ImportError as exc:
        raise ConfigError(
            f"env.id={cfg.id!r} needs an optional dependency: {exc}. For Box2D environments "
            "install the extra: pip install 'apex-dqn[box2d]'; for Atari: 'apex-dqn[atari]'"
        ) from None


def inspect_env(cfg: EnvConfig) -> EnvInfo:
    """Build the environment once and check it is usable; raise ConfigError naming the problem.

    Called by the CLI before Ray starts, so an unknown id or a continuous action space fails fast.
    """
    env = _open(cfg)
    try:
        if not isinstance(env.action_space, gym.spaces.Discrete):
            raise ConfigError(
                f"env.id={cfg.id!r} has action space {env.action_space}; apex-dqn needs a "
                "Discrete action space (DQN picks among a finite set of actions)"
            )
        space = env.observation_space
        if cfg.atari is None and (not isinstance(space, gym.spaces.Box) or len(space.shape) != 1):
            raise ConfigError(
                f"env.id={cfg.id!r} has observation space {space}; apex-dqn needs a vector "
                "observation (a 1-D Box), or env=atari for an ALE game"
            )
        assert isinstance(space, gym.spaces.Box)
        threshold = env.spec.reward_threshold if env.spec is not None else None
        return EnvInfo(
            obs_shape=tuple(int(d) for d in space.shape),
            obs_dtype=np.dtype(np.uint8 if cfg.atari is not None else np.float32).name,
            num_actions=int(env.action_space.n),
            reward_threshold=None if threshold is None else float(threshold),
        )
    finally:
        env.close()


def make_vector_env(cfg: EnvConfig, *, num_envs: int, mode: str = "sync") -> VectorEnv:
    """A vector env of ``num_envs`` copies with SAME_STEP autoreset.

    Args:
        cfg: the environment.
        num_envs: copies stepped in lock-step, >= 1.
        mode: "sync" steps them in this process one after another; "async" gives each its own
            subprocess (worth it only when a step costs much more than the inter-process hop,
            e.g. Atari with spare cores; README, Atari).
    """
    if mode not in VECTOR_MODES:
        raise ValueError(f"mode must be one of {', '.join(VECTOR_MODES)}; got {mode!r}")
    fns: list[Callable[[], gym.Env]] = [functools.partial(make_env, cfg)] * num_envs
    if mode == "sync":
        return SyncVectorEnv(fns, autoreset_mode=AutoresetMode.SAME_STEP)
    # forkserver: a fresh interpreter per env, never a fork of a Ray worker's threads.
    return AsyncVectorEnv(fns, autoreset_mode=AutoresetMode.SAME_STEP, context="forkserver")


def true_next_obs(next_obs_N: np.ndarray, done_N: np.ndarray, infos: dict) -> np.ndarray:
    """Replace the reset observation of envs that just ended by their final observation."""
    if not done_N.any():
        return next_obs_N
    out = next_obs_N.copy()
    idx = np.flatnonzero(done_N)
    final = infos["final_obs"]
    out[idx] = np.stack([final[i] for i in idx])
    return out


def lives(infos: dict, num_envs: int) -> np.ndarray:
    """The ``lives`` counter of every env (zeros for envs without one), int64 [N]."""
    value = infos.get("lives")
    if value is None:
        return np.zeros(num_envs, dtype=np.int64)
    return np.asarray(value, dtype=np.int64).reshape(num_envs)


def life_lost(prev_lives_N: np.ndarray, lives_N: np.ndarray, done_N: np.ndarray) -> np.ndarray:
    """Envs that lost a life at this step while their game goes on (bool [N]).

    After an episode ends, SAME_STEP autoreset reports the new game's lives, so ended envs are
    excluded (their episode end is a termination or truncation already).
    """
    return (lives_N < prev_lives_N) & ~done_N


def training_rewards(reward_N: np.ndarray, atari: AtariConfig | None) -> np.ndarray:
    """Rewards the learner sees: clipped to [-1, 1] when ``atari.clip_rewards`` (DQN)."""
    if atari is not None and atari.clip_rewards:
        return np.clip(reward_N, -1.0, 1.0)
    return reward_N
