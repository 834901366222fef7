"""Environment factories and the checks that an environment fits apex-dqn.

Actors and the evaluator step gymnasium vector environments in lock-step. We use gymnasium's own
vector envs with the SAME_STEP autoreset mode: on the step where an episode ends, the true final
observation is in ``infos["final_obs"]`` (needed for n-step bootstrapping) and the returned
observation is already the first one of the next episode.

Atari games (``env.atari`` set) are made with ``frameskip=1`` and wrapped in gymnasium's
``AtariPreprocessing`` and ``FrameStackObservation`` (DeepMind preprocessing).
Life loss and reward clipping are training signals only: the actor derives them from the env's
``lives`` info and the raw rewards (``life_lost``, ``training_rewards``), so the environment
itself always plays whole games and reports unclipped returns.

MinAtar games (``MinAtar/<Game>-v1``, Young & Tian 2019) come from the ``minatar`` package,
whose gymnasium envs must be registered explicitly. Their (10, 10, C) bool observations are
turned into channels-first (C, 10, 10) uint8 arrays: the layout the convolutional torsos take,
and a quarter of float32's bytes in the replay.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium.vector import AsyncVectorEnv, AutoresetMode, SyncVectorEnv

from apex_dqn.config import AtariConfig, ConfigError, EnvConfig

VECTOR_MODES = ("sync", "async", "ale")
MINATAR_GAMES = ("Asterix", "Breakout", "Freeway", "Seaquest", "SpaceInvaders")


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


MINATAR_PREFIX = "MinAtar/"


def is_minatar(env_id: str) -> bool:
    """Whether ``env_id`` names a MinAtar game (``MinAtar/Breakout-v1``, ...)."""
    return env_id.startswith(MINATAR_PREFIX)


def _register_minatar() -> None:
    """Make the MinAtar/... ids known to gymnasium (gymnasium 1.x loads no plugins itself)."""
    try:
        import minatar.gym
    except ImportError:
        raise ConfigError(
            "MinAtar games need the minatar package: pip install 'apex-dqn[minatar]'"
        ) from None
    if MINATAR_PREFIX + "Breakout-v1" not in gym.registry:
        minatar.gym.register_envs()


class ChannelsFirst(gym.ObservationWrapper):
    """(H, W, C) bool observations as (C, H, W) uint8 (MinAtar's layout made the torsos')."""

    def __init__(self, env: gym.Env) -> None:
        super().__init__(env)
        height, width, channels = env.observation_space.shape  # type: ignore[misc]
        self.observation_space = gym.spaces.Box(0, 1, (channels, height, width), np.uint8)

    def observation(self, observation: np.ndarray) -> np.ndarray:
        return np.ascontiguousarray(np.moveaxis(observation, -1, 0), dtype=np.uint8)


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
    if cfg.atari is not None:
        return _make_atari(cfg.id, cfg.atari, kwargs)
    if is_minatar(cfg.id):
        _register_minatar()
        return ChannelsFirst(gym.make(cfg.id, **kwargs))
    return gym.make(cfg.id, **kwargs)


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
        if cfg.atari is not None:
            hint = "an ALE id such as ALE/Pong-v5 or ALE/Breakout-v5"
        elif is_minatar(cfg.id):
            hint = "one of " + ", ".join(f"MinAtar/{g}-v1" for g in MINATAR_GAMES)
        else:
            hint = (
                "an id from gymnasium.registry, e.g. CartPole-v1, Acrobot-v1, MountainCar-v0, "
                "LunarLander-v3 (Atari games: env=atari env.id=ALE/Pong-v5; MinAtar games: "
                "env=minatar env.id=MinAtar/Breakout-v1)"
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
        frames = cfg.atari is not None or is_minatar(cfg.id)
        if not frames and (not isinstance(space, gym.spaces.Box) or len(space.shape) != 1):
            raise ConfigError(
                f"env.id={cfg.id!r} has observation space {space}; apex-dqn needs a vector "
                "observation (a 1-D Box), or env=atari for an ALE game, or env=minatar for a "
                "MinAtar game"
            )
        assert isinstance(space, gym.spaces.Box)
        threshold = env.spec.reward_threshold if env.spec is not None else None
        return EnvInfo(
            obs_shape=tuple(int(d) for d in space.shape),
            obs_dtype=np.dtype(np.uint8 if frames else np.float32).name,
            num_actions=int(env.action_space.n),
            reward_threshold=None if threshold is None else float(threshold),
        )
    finally:
        env.close()


def make_vector_env(
    cfg: EnvConfig, *, num_envs: int, mode: str = "sync"
) -> SyncVectorEnv | AsyncVectorEnv:
    """A vector env of ``num_envs`` copies with SAME_STEP autoreset.

    Args:
        cfg: the environment.
        num_envs: copies stepped in lock-step, >= 1.
        mode: "sync" steps them in this process one after another; "async" gives each its own
            subprocess (worth it only when a step costs much more than the inter-process hop,
            e.g. Atari with spare cores; docs/atari.md); "ale" (Atari only) is ale-py's C++
            vector env (``AleVectorEnv``).
    """
    if mode not in VECTOR_MODES:
        raise ValueError(f"mode must be one of {', '.join(VECTOR_MODES)}; got {mode!r}")
    if mode == "ale":
        return AleVectorEnv(cfg, num_envs=num_envs)  # type: ignore[return-value]
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


def _ale_game(env_id: str) -> str:
    """ale-py's ROM name of a gymnasium id: ALE/SpaceInvaders-v5 -> space_invaders."""
    name = env_id.split("/")[-1].split("-v")[0].removesuffix("NoFrameskip")
    return re.sub(r"(?<!^)(?=[A-Z])", "_", name).lower()


class AleVectorEnv:
    """ale-py's C++ vector env (``ale_py.vector_env.AtariVectorEnv``) behind the interface the
    actor uses of a SAME_STEP gymnasium vector env, with the observations of ``make_env``.

    ALE does the DeepMind preprocessing (frame skip with max-pooling, grayscale resize, no-op
    starts, sticky actions) in C++ in a thread of its own, which releases the GIL while the
    envs step. Frame stacking is done here, because ALE pads a new episode's stack with zero
    frames and gymnasium's ``FrameStackObservation`` (the reference, and what the actors'
    frame keys assume) repeats the first frame. Rewards stay unclipped and life loss is not
    terminal (both are training signals handled by the actor), as with ``make_env``.
    """

    def __init__(self, cfg: EnvConfig, *, num_envs: int, num_threads: int = 1) -> None:
        if cfg.atari is None:
            raise ConfigError("actors.vector_mode=ale needs an Atari env (env=atari)")
        from ale_py.vector_env import AtariVectorEnv

        atari = cfg.atari
        frames = 108_000  # ALE v5's limit
        if cfg.max_episode_steps is not None:
            frames = cfg.max_episode_steps * atari.frame_skip
        self._env = AtariVectorEnv(
            _ale_game(cfg.id),
            num_envs=num_envs,
            num_threads=num_threads,
            max_num_frames_per_episode=frames,
            repeat_action_probability=atari.repeat_action_probability,
            full_action_space=atari.full_action_space,
            autoreset_mode="SameStep",
            img_height=atari.screen_size,
            img_width=atari.screen_size,
            grayscale=True,
            stack_num=1,
            frameskip=atari.frame_skip,
            maxpool=True,
            noop_max=atari.noop_max,
            episodic_life=False,
            reward_clipping=False,
            use_fire_reset=False,
        )
        self.num_envs = num_envs
        size = atari.screen_size
        self._stack_NSHW = np.zeros((num_envs, atari.frame_stack, size, size), dtype=np.uint8)

    def reset(self, *, seed: int | list[int] | None = None) -> tuple[np.ndarray, dict[str, Any]]:
        """Reset every env; each stack holds its first frame ``frame_stack`` times.

        ALE seeds env i with ``seed + i`` as a C++ int: larger seeds are folded into range, and
        of a list of seeds (one per env, as gymnasium's vector envs take) the first is used.
        """
        if isinstance(seed, list):
            seed = seed[0]
        if seed is not None:
            seed = int(seed) % (2**31 - self.num_envs)
        obs, info = self._env.reset(seed=seed)
        order = self._order(info)
        self._stack_NSHW[:] = obs[order][:, -1:]
        return self._stack_NSHW.copy(), {k: np.asarray(v)[order] for k, v in info.items()}

    def step(
        self, actions: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, dict[str, Any]]:
        """Step every env; an env that ended shows its reset stack and its final stack in
        ``infos["final_obs"]`` (gymnasium's SAME_STEP autoreset)."""
        obs, reward, term, trunc, info = self._env.step(np.asarray(actions, dtype=np.int64))
        order = self._order(info)
        frame_NHW = obs[order][:, -1]
        term, trunc = np.asarray(term)[order], np.asarray(trunc)[order]
        done_N = term | trunc
        infos: dict[str, Any] = {
            k: np.asarray(v)[order] for k, v in info.items() if k != "final_obs"
        }
        stack = self._stack_NSHW
        stack[:, :-1] = stack[:, 1:]
        if done_N.any():
            final = info["final_obs"]
            final_obs = np.empty(self.num_envs, dtype=object)
            for i in np.flatnonzero(done_N):
                slot = int(order[i])
                stack[i, -1] = np.asarray(final[slot])[-1]
                final_obs[i] = stack[i].copy()
                stack[i] = frame_NHW[i]  # the new episode's first frame, repeated
            infos["final_obs"] = final_obs
        not_done = ~done_N
        stack[not_done, -1] = frame_NHW[not_done]
        return stack.copy(), np.asarray(reward)[order].astype(np.float64), term, trunc, infos

    @staticmethod
    def _order(info: dict[str, Any]) -> np.ndarray:
        """Positions of envs 0..N-1 in ALE's answer (it answers in the order envs finish)."""
        return np.argsort(np.asarray(info["env_id"]), kind="stable")

    def close(self) -> None:
        """Stop ALE's threads."""
        self._env.close()
