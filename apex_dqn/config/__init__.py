"""Layer 1, typed configuration: the dataclass schemas behind Hydra's `conf/`, and their validation.

Every knob lives in one of the section modules with a one-line doc of its effect and range:
``problem`` (env, network, algo), ``workers`` (actors, replay, learner, eval) and ``run``
(train, checkpoint, logging, wandb, ray); ``Config`` below joins them and checks what spans
sections. Validation runs in ``__post_init__`` (Hydra's ``OmegaConf.to_object`` calls it), so a
bad override fails in milliseconds, before Ray starts, with a message naming the full key and
the allowed values. Components receive these dataclasses, never the raw Hydra config.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, fields, is_dataclass
from typing import Any, TypeVar, get_args, get_type_hints

from apex_dqn.config.checks import ConfigError, check_choice, check_float, check_int
from apex_dqn.config.problem import AlgoConfig, AtariConfig, EnvConfig, NetworkConfig
from apex_dqn.config.run import CheckpointConfig, LoggingConfig, RayConfig, TrainConfig, WandbConfig
from apex_dqn.config.workers import ActorsConfig, EvalConfig, LearnerConfig, ReplayConfig

__all__ = [
    "ActorsConfig",
    "AlgoConfig",
    "AtariConfig",
    "CheckpointConfig",
    "Config",
    "ConfigError",
    "EnvConfig",
    "EvalConfig",
    "LearnerConfig",
    "LoggingConfig",
    "NetworkConfig",
    "RayConfig",
    "ReplayConfig",
    "TrainConfig",
    "WandbConfig",
    "check_choice",
    "check_float",
    "check_int",
    "from_dict",
    "section_type",
]

_T = TypeVar("_T")


@dataclass
class Config:
    """A whole training run."""

    env: EnvConfig = field(default_factory=EnvConfig)
    network: NetworkConfig = field(default_factory=NetworkConfig)
    algo: AlgoConfig = field(default_factory=AlgoConfig)
    actors: ActorsConfig = field(default_factory=ActorsConfig)
    replay: ReplayConfig = field(default_factory=ReplayConfig)
    learner: LearnerConfig = field(default_factory=LearnerConfig)
    eval: EvalConfig = field(default_factory=EvalConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    ray: RayConfig = field(default_factory=RayConfig)
    checkpoint: CheckpointConfig = field(default_factory=CheckpointConfig)
    logging: LoggingConfig = field(default_factory=LoggingConfig)
    seed: int = 0
    """Seed for networks, environments and replay sampling, >= 0."""
    output_dir: str | None = None
    """Where the run writes its files (None: the Hydra run directory / current directory)."""
    runtime: str = "ray"
    """ray: distributed components on Ray; local: the same components in one process."""
    resume: str | None = None
    """A run directory to continue (its checkpoint.pt, counters, metrics and replay snapshots);
    the run keeps writing there. Other overrides given with it replace the saved values."""

    def __post_init__(self) -> None:
        check_int("seed", self.seed, lo=0, hi=2**31 - 1)
        check_choice("runtime", self.runtime, ("ray", "local"))
        if self.runtime == "local" and self.learner.num_learners > 1:
            raise ConfigError(
                f"learner.num_learners={self.learner.num_learners} needs runtime=ray (the local "
                "runtime runs one learner in one process)"
            )
        per_shard = self.replay.capacity // self.replay.num_shards
        if per_shard < self.learner.batch_size:
            raise ConfigError(
                "replay.capacity / replay.num_shards must be >= learner.batch_size "
                f"(each shard serves whole batches): {self.replay.capacity} / "
                f"{self.replay.num_shards} = {per_shard} < {self.learner.batch_size}"
            )
        if self.replay.min_size_to_learn > self.replay.capacity:
            raise ConfigError(
                f"replay.min_size_to_learn must be <= replay.capacity ({self.replay.capacity}), "
                f"got {self.replay.min_size_to_learn}"
            )
        if self.replay.min_size_to_learn < self.learner.batch_size:
            raise ConfigError(
                f"replay.min_size_to_learn must be >= learner.batch_size "
                f"({self.learner.batch_size}), got {self.replay.min_size_to_learn}"
            )
        lo, hi = self.actors.min_replay_ratio, self.learner.max_replay_ratio
        if lo > 0 and hi > 0 and lo >= hi:
            raise ConfigError(
                f"actors.min_replay_ratio must be < learner.max_replay_ratio ({hi:g}) or 0, "
                f"got {lo:g}: actors and learner would wait for each other"
            )
        if self.actors.vector_mode == "ale" and self.env.atari is None:
            raise ConfigError(
                "actors.vector_mode=ale needs an Atari env (env=atari); use sync or async"
            )
        if self.network.torso == "nature" and self.env.atari is None:
            raise ConfigError(
                "network.torso=nature needs stacked frames: use env=atari (or network.torso=mlp; "
                "network.torso=minatar for a MinAtar game)"
            )
        minatar = self.env.id.startswith("MinAtar/")
        if self.network.torso == "minatar" and not minatar:
            raise ConfigError(
                "network.torso=minatar needs a MinAtar game: use env=minatar "
                "env.id=MinAtar/Breakout-v1 (or network.torso=mlp)"
            )
        if minatar and self.network.torso != "minatar":
            raise ConfigError(
                f"env.id={self.env.id} gives 10x10 grids: use network.torso=minatar (env=minatar "
                f"sets it), got network.torso={self.network.torso}"
            )
        if self.replay.beta_end < self.replay.beta_start:
            raise ConfigError(
                f"replay.beta_end must be >= replay.beta_start ({self.replay.beta_start}), "
                f"got {self.replay.beta_end}"
            )


def from_dict(cls: type[_T], data: Mapping[str, Any], prefix: str = "") -> _T:
    """The config dataclass ``cls`` from plain data (a checkpoint's saved config, which is
    ``dataclasses.asdict`` of one): nested sections are built from their dicts and validated; an
    unknown key fails with its full name and the allowed ones."""
    names = [f.name for f in fields(cls)]  # type: ignore[arg-type]
    unknown = sorted(set(data) - set(names))
    if unknown:
        raise ConfigError(
            f"unknown key {prefix}{unknown[0]}; {prefix.rstrip('.') or 'the config'} has: "
            + ", ".join(names)
        )
    hints = get_type_hints(cls)
    kwargs: dict[str, Any] = {}
    for name, value in data.items():
        section = section_type(hints[name])
        if section is not None and isinstance(value, Mapping):
            value = from_dict(section, value, f"{prefix}{name}.")
        kwargs[name] = value
    return cls(**kwargs)


def section_type(hint: Any) -> type | None:
    """The dataclass a field holds (also ``X | None``), else None."""
    if is_dataclass(hint):
        return hint  # type: ignore[return-value]
    for arg in get_args(hint):
        if is_dataclass(arg):
            return arg  # type: ignore[return-value]
    return None
