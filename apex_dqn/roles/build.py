"""What every role is built from, as typed specs made from a ``Config``: both runtimes build their
roles from the same specs, so that a role is the same whichever runtime hosts it. Seeds come
from the run's one seed tree (``apex_dqn.core.seeding``).

A spec is a frozen dataclass of plain data (it travels to a Ray process as a constructor
argument) with a ``build()`` that makes the component. The components' modules are imported
inside ``build()``: the driver of a Ray run makes specs but never loads torch.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from apex_dqn.algo.exploration import actor_epsilons
from apex_dqn.config import (
    ActorsConfig,
    AlgoConfig,
    Config,
    EnvConfig,
    LearnerConfig,
    NetworkConfig,
    ReplayConfig,
)
from apex_dqn.core import seeding

if TYPE_CHECKING:
    from apex_dqn.algo.actor import Actor, PipelinedActor
    from apex_dqn.algo.evaluator import Evaluator
    from apex_dqn.algo.learner import Learner
    from apex_dqn.envs.factory import EnvInfo
    from apex_dqn.replay import PrioritizedReplay

REPLAY_DIR = "replay"


@dataclass(frozen=True)
class ActorSpec:
    """One actor: its index and seed, and the config sections it reads."""

    index: int
    env: EnvConfig
    network: NetworkConfig
    algo: AlgoConfig
    actors: ActorsConfig
    num_actions: int
    obs_shape: tuple[int, ...]
    obs_dtype: str
    frame_batches: bool
    behaviour: bool
    seed: int

    def build(self) -> Actor | PipelinedActor:
        """An ``Actor``, or a ``PipelinedActor`` with ``actors.pipeline``."""
        from apex_dqn.algo.actor import Actor, PipelinedActor

        cls = PipelinedActor if self.actors.pipeline else Actor
        return cls(
            actor_index=self.index,
            env=self.env,
            network=self.network,
            algo=self.algo,
            actors=self.actors,
            num_actions=self.num_actions,
            obs_shape=self.obs_shape,
            obs_dtype=self.obs_dtype,
            frame_batches=self.frame_batches,
            behaviour=self.behaviour,
            seed=self.seed,
        )


@dataclass(frozen=True)
class LearnerSpec:
    """The learner: the network, the update's configs and every actor's epsilon (for
    ``learner.actor_correction``)."""

    obs_shape: tuple[int, ...]
    num_actions: int
    network: NetworkConfig
    algo: AlgoConfig
    learner: LearnerConfig
    replay: ReplayConfig
    actor_epsilons: tuple[float, ...]
    seed: int

    def build(self) -> Learner:
        """The ``Learner``."""
        from apex_dqn.algo.learner import Learner

        return Learner(
            obs_shape=self.obs_shape,
            num_actions=self.num_actions,
            network=self.network,
            algo=self.algo,
            learner=self.learner,
            replay=self.replay,
            actor_epsilons=np.asarray(self.actor_epsilons),
            seed=self.seed,
        )


@dataclass(frozen=True)
class ShardSpec:
    """One replay shard: its share of the capacity, its seed and where its snapshot lives."""

    capacity: int
    obs_shape: tuple[int, ...]
    obs_dtype: str
    frames: bool
    alpha: float
    priority_eps: float
    seed: int
    behaviour: bool
    snapshot_path: str | None

    def build(self) -> PrioritizedReplay:
        """A ``FramePrioritizedReplay`` when ``frames``, else a ``PrioritizedReplay``."""
        from apex_dqn.replay import make_replay

        return make_replay(
            frames=self.frames,
            capacity=self.capacity,
            obs_shape=self.obs_shape,
            obs_dtype=self.obs_dtype,
            alpha=self.alpha,
            priority_eps=self.priority_eps,
            seed=self.seed,
            behaviour=self.behaviour,
        )


@dataclass(frozen=True)
class EvaluatorSpec:
    """The evaluator: its env, episodes, epsilon, seed and the return that asks for a
    confirmation."""

    env: EnvConfig
    network: NetworkConfig
    obs_shape: tuple[int, ...]
    num_actions: int
    episodes: int
    epsilon: float
    seed: int
    confirm_at: float | None
    vector_mode: str

    def build(self, evaluations_done: int = 0) -> Evaluator:
        """The ``Evaluator``; ``evaluations_done`` by the one it replaces (new episodes)."""
        from apex_dqn.algo.evaluator import Evaluator

        return Evaluator(
            env=self.env,
            network=self.network,
            obs_shape=self.obs_shape,
            num_actions=self.num_actions,
            episodes=self.episodes,
            epsilon=self.epsilon,
            seed=self.seed,
            confirm_at=self.confirm_at,
            vector_mode=self.vector_mode,
            evaluations_done=evaluations_done,
        )


def target_return(cfg: Config, info: EnvInfo) -> float | None:
    """train.target_return, or the spec's reward_threshold when unset."""
    return cfg.train.target_return if cfg.train.target_return is not None else info.reward_threshold


def frame_storage(cfg: Config) -> bool:
    """Whether actors push frames once and shards store them once (Atari, replay.frame_dedup)."""
    return cfg.env.atari is not None and cfg.replay.frame_dedup


def actor_spec(cfg: Config, info: EnvInfo, index: int, generation: int = 0) -> ActorSpec:
    """Actor number ``index``; each actor gets its own seed.

    ``generation`` (the number of resumes) shifts the seeds so that a resumed run does not
    replay the episodes it has already seen.
    """
    return ActorSpec(
        index=index,
        env=cfg.env,
        network=cfg.network,
        algo=cfg.algo,
        actors=cfg.actors,
        num_actions=info.num_actions,
        obs_shape=info.obs_shape,
        obs_dtype=info.obs_dtype,
        frame_batches=frame_storage(cfg),
        behaviour=cfg.learner.actor_correction,
        seed=seeding.actor_seed(cfg.seed, index, generation),
    )


def learner_spec(cfg: Config, info: EnvInfo) -> LearnerSpec:
    """The learner of a run (every learner of a group is built from the same spec)."""
    eps = actor_epsilons(cfg.actors.num_actors, eps=cfg.actors.eps_base, alpha=cfg.actors.eps_alpha)
    return LearnerSpec(
        obs_shape=info.obs_shape,
        num_actions=info.num_actions,
        network=cfg.network,
        algo=cfg.algo,
        learner=cfg.learner,
        replay=cfg.replay,
        actor_epsilons=tuple(float(e) for e in eps),
        seed=cfg.seed,
    )


def shard_spec(cfg: Config, info: EnvInfo, shard: int, out_dir: Path | None) -> ShardSpec:
    """Replay shard ``shard`` (the capacity split evenly); with ``replay.snapshot_every_s`` > 0
    it keeps a snapshot under ``out_dir/replay/`` (``out_dir`` None: no snapshots, for tests
    and benchmarks that have no run directory)."""
    snapshot = None
    if out_dir is not None and cfg.replay.snapshot_every_s > 0:
        snapshot = str(Path(out_dir).resolve() / REPLAY_DIR / f"shard{shard}.npz")
    return ShardSpec(
        capacity=cfg.replay.capacity // cfg.replay.num_shards,
        obs_shape=info.obs_shape,
        obs_dtype=info.obs_dtype,
        frames=frame_storage(cfg),
        alpha=cfg.replay.alpha,
        priority_eps=cfg.replay.priority_eps,
        seed=seeding.shard_seed(cfg.seed, shard),
        behaviour=cfg.learner.actor_correction,
        snapshot_path=snapshot,
    )


def evaluator_spec(cfg: Config, info: EnvInfo, generation: int = 0) -> EvaluatorSpec:
    """The evaluator (its seeds come from the run's seed tree too)."""
    return EvaluatorSpec(
        env=cfg.env,
        network=cfg.network,
        obs_shape=info.obs_shape,
        num_actions=info.num_actions,
        episodes=cfg.eval.episodes,
        epsilon=cfg.eval.epsilon,
        seed=seeding.evaluator_seed(cfg.seed, generation),
        confirm_at=target_return(cfg, info),
        vector_mode=cfg.actors.vector_mode,
    )
