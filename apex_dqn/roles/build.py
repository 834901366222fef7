"""The roles' constructor arguments, from a ``Config``: what both runtimes build their roles
with, so that a role is the same whichever runtime hosts it. Seeds come from the run's one seed
tree (``apex_dqn.core.seeding``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from apex_dqn.algo.exploration import actor_epsilons
from apex_dqn.config import Config
from apex_dqn.core import seeding
from apex_dqn.envs.factory import EnvInfo

REPLAY_DIR = "replay"


def target_return(cfg: Config, info: EnvInfo) -> float | None:
    """train.target_return, or the spec's reward_threshold when unset."""
    return cfg.train.target_return if cfg.train.target_return is not None else info.reward_threshold


def actor_kwargs(cfg: Config, info: EnvInfo, index: int, generation: int = 0) -> dict[str, Any]:
    """Keyword arguments of ``Actor`` number ``index``; each actor gets its own seed.

    ``generation`` (the number of resumes) shifts the seeds so that a resumed run does not
    replay the episodes it has already seen.
    """
    return {
        "actor_index": index,
        "env": cfg.env,
        "network": cfg.network,
        "algo": cfg.algo,
        "actors": cfg.actors,
        "num_actions": info.num_actions,
        "obs_shape": info.obs_shape,
        "obs_dtype": info.obs_dtype,
        "frame_batches": frame_storage(cfg),
        "seed": seeding.actor_seed(cfg.seed, index, generation),
    }


def learner_kwargs(cfg: Config, info: EnvInfo) -> dict[str, Any]:
    """Keyword arguments of ``Learner``."""
    eps = actor_epsilons(cfg.actors.num_actors, eps=cfg.actors.eps_base, alpha=cfg.actors.eps_alpha)
    return {
        "obs_shape": info.obs_shape,
        "num_actions": info.num_actions,
        "network": cfg.network,
        "algo": cfg.algo,
        "learner": cfg.learner,
        "replay": cfg.replay,
        "actor_epsilons": eps,
        "seed": cfg.seed,
    }


def frame_storage(cfg: Config) -> bool:
    """Whether actors push frames once and shards store them once (Atari, replay.frame_dedup)."""
    return cfg.env.atari is not None and cfg.replay.frame_dedup


def replay_kwargs(cfg: Config, info: EnvInfo, shard: int) -> dict[str, Any]:
    """Keyword arguments of ``PrioritizedReplay`` for shard ``shard`` (capacity split evenly)."""
    return {
        "capacity": cfg.replay.capacity // cfg.replay.num_shards,
        "obs_shape": info.obs_shape,
        "obs_dtype": info.obs_dtype,
        "frames": frame_storage(cfg),
        "alpha": cfg.replay.alpha,
        "priority_eps": cfg.replay.priority_eps,
        "seed": seeding.shard_seed(cfg.seed, shard),
    }


def evaluator_kwargs(cfg: Config, info: EnvInfo, generation: int = 0) -> dict[str, Any]:
    """Keyword arguments of ``Evaluator`` (its seeds come from the run's seed tree too)."""
    return {
        "env": cfg.env,
        "network": cfg.network,
        "obs_shape": info.obs_shape,
        "num_actions": info.num_actions,
        "episodes": cfg.eval.episodes,
        "epsilon": cfg.eval.epsilon,
        "seed": seeding.evaluator_seed(cfg.seed, generation),
        "confirm_at": target_return(cfg, info),
        "vector_mode": cfg.actors.vector_mode,
    }


def snapshot_path(cfg: Config, out_dir: Path, shard: int) -> str | None:
    """Where shard ``shard`` keeps its replay snapshot (None when snapshots are off)."""
    if cfg.replay.snapshot_every_s <= 0:
        return None
    return str(Path(out_dir).resolve() / REPLAY_DIR / f"shard{shard}.npz")
