"""The train, checkpoint, logging, wandb and ray sections: how long a run goes, what it writes
and where it runs."""

from __future__ import annotations

from dataclasses import dataclass, field

from apex_dqn.config.checks import ConfigError, check_choice, check_float, check_int


@dataclass
class TrainConfig:
    """When to stop and how often to report."""

    max_env_steps: int = 2_000_000
    """Stop after this many environment steps (all actors together), >= 1."""
    max_seconds: float = 600.0
    """Stop after this many wall-clock seconds of training, > 0."""
    target_return: float | None = None
    """Stop when a greedy evaluation reaches it (None: the env spec's reward_threshold)."""
    stop_on_target: bool = True
    """Stop as soon as the target is reached (False: keep training to the other limits)."""
    report_interval_s: float = 2.0
    """Seconds between status lines and metrics.jsonl records, > 0."""
    plot: bool = True
    """Write the learning-curve PNG at the end."""

    def __post_init__(self) -> None:
        check_int("train.max_env_steps", self.max_env_steps, lo=1)
        check_float("train.max_seconds", self.max_seconds, lo=0.0, lo_open=True)
        if self.target_return is not None:
            check_float("train.target_return", self.target_return)
        check_float("train.report_interval_s", self.report_interval_s, lo=0.0, lo_open=True)


@dataclass
class CheckpointConfig:
    """Periodic checkpoints of the learner (and the run's counters) in the run directory."""

    every_s: float = 60.0
    """Seconds between periodic checkpoints (0: only the final one), >= 0."""
    keep_last: int = 3
    """Periodic checkpoints kept in <run dir>/checkpoints/ (older ones are deleted), >= 1."""
    save_best: bool = True
    """Also keep checkpoint_best.pt: the checkpoint taken after the best greedy evaluation."""

    def __post_init__(self) -> None:
        check_float("checkpoint.every_s", self.every_s, lo=0.0)
        check_int("checkpoint.keep_last", self.keep_last, lo=1, hi=1000)


@dataclass
class WandbConfig:
    """Weights & Biases: one wandb run per training run (``logging=wandb``)."""

    enabled: bool = False
    """Log every metrics record to wandb (env steps as the x-axis) and the config once."""
    mode: str = "offline"
    """online (needs network access and a login), offline (synced later with `wandb sync`),
    or disabled."""
    project: str = "apex-dqn"
    """wandb project."""
    entity: str | None = None
    """wandb team or user (None: the login's default)."""
    group: str | None = None
    """Run group, e.g. one per sweep (None: none)."""
    tags: list[str] = field(default_factory=list)
    """Run tags."""

    def __post_init__(self) -> None:
        check_choice("logging.wandb.mode", self.mode, ("online", "offline", "disabled"))
        if not isinstance(self.project, str) or not self.project:
            raise ConfigError(
                f"logging.wandb.project must be a non-empty string, got {self.project!r}"
            )


@dataclass
class LoggingConfig:
    """Where metrics go besides metrics.jsonl (always written); several sinks at once are fine:
    ``logging=[wandb,tensorboard]``."""

    console: bool = True
    """Print one status line per report interval, with progress toward the stop condition."""
    tensorboard: bool = False
    """TensorBoard event files in <run dir>/tensorboard (needs apex-dqn[tensorboard])."""
    wandb: WandbConfig = field(default_factory=WandbConfig)


def ray_host_port(key: str, address: str) -> tuple[str, int] | None:
    """The host and port of a Ray address: None for 'auto', 'local' and other clients' schemes
    (``anyscale://...``), which Ray resolves; ConfigError naming ``key`` for an http(s) address
    (the dashboard's, for ``ray job submit``) and anything else that is not [ray://]host:port."""
    if address in ("auto", "local"):
        return None
    scheme, has_scheme, rest = address.partition("://")
    scheme = scheme.lower()
    if has_scheme and scheme in ("http", "https"):
        raise ConfigError(
            f"{key}={address} is a dashboard address (for ray job submit); give the head's "
            "host:port (6379 by default) or ray://host:10001"
        )
    if has_scheme and scheme != "ray":
        return None
    host, sep, port = (rest if has_scheme else address).rpartition(":")
    host = host.strip("[]")  # an IPv6 literal, [::1]:6379
    if not sep or not host or "/" in host or not port.isdigit() or not 0 < int(port) < 65536:
        raise ConfigError(
            f"{key} must be 'auto', 'local', host:port or ray://host:port, got {address!r}"
        )
    return host, int(port)


@dataclass
class RayConfig:
    """How to reach Ray."""

    address: str | None = None
    """None: start a local instance (RAY_ADDRESS is honoured); 'auto', host:port or
    ray://host:port: connect (a host:port that does not answer fails in seconds)."""
    num_cpus: int | None = None
    """CPUs of a local instance (None: those this process may use: its affinity mask, capped
    by a container's CPU quota), >= 1."""
    object_store_memory: int | None = None
    """Bytes for a local instance's object store (None: Ray's default), >= 75 MiB."""
    parameter_server_num_cpus: float = 0.0
    """Ray CPUs reserved for the parameter server (it only stores references), in [0, 64]."""

    def __post_init__(self) -> None:
        if self.address:  # empty: a local instance, as None
            ray_host_port("ray.address", self.address)
        if self.num_cpus is not None:
            check_int("ray.num_cpus", self.num_cpus, lo=1)
        if self.object_store_memory is not None:
            check_int("ray.object_store_memory", self.object_store_memory, lo=75 * 1024 * 1024)
        check_float("ray.parameter_server_num_cpus", self.parameter_server_num_cpus, lo=0, hi=64)
