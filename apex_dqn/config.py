"""Typed configuration: the dataclass schemas behind Hydra's `conf/`, and their validation.

Every knob lives here with a one-line doc of its effect and range. Validation runs in
``__post_init__`` (Hydra's ``OmegaConf.to_object`` calls it), so a bad override fails in
milliseconds, before Ray starts, with a message naming the full key and the allowed values.
Components receive these dataclasses, never the raw Hydra config.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field, fields, is_dataclass
from typing import Any, TypeVar, get_args, get_type_hints

_T = TypeVar("_T")


class ConfigError(ValueError):
    """A configuration value outside what apex-dqn accepts; the message names key and range."""


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def check_int(key: str, value: Any, *, lo: int | None = None, hi: int | None = None) -> None:
    """Raise ConfigError unless ``value`` is an int in [lo, hi]."""
    ok = isinstance(value, int) and not isinstance(value, bool)
    ok = ok and (lo is None or value >= lo) and (hi is None or value <= hi)
    if not ok:
        raise ConfigError(f"{key} must be an integer {_range_text(lo, hi)}, got {value!r}")


def check_float(
    key: str,
    value: Any,
    *,
    lo: float | None = None,
    hi: float | None = None,
    lo_open: bool = False,
    hi_open: bool = False,
) -> None:
    """Raise ConfigError unless ``value`` is a finite number in the given (half-)open range."""
    ok = _is_number(value) and math.isfinite(value)
    if ok and lo is not None:
        ok = value > lo if lo_open else value >= lo
    if ok and hi is not None:
        ok = value < hi if hi_open else value <= hi
    if not ok:
        lo_b = "(" if lo_open else "["
        hi_b = ")" if hi_open else "]"
        lo_t = "-inf" if lo is None else f"{lo:g}"
        hi_t = "inf" if hi is None else f"{hi:g}"
        raise ConfigError(f"{key} must be a number in {lo_b}{lo_t}, {hi_t}{hi_b}, got {value!r}")


def check_choice(key: str, value: Any, choices: tuple[str, ...]) -> None:
    """Raise ConfigError unless ``value`` is one of ``choices``."""
    if value not in choices:
        raise ConfigError(f"{key} must be one of {', '.join(choices)}; got {value!r}")


def _range_text(lo: int | None, hi: int | None) -> str:
    if lo is not None and hi is not None:
        return f"in [{lo}, {hi}]"
    if lo is not None:
        return f">= {lo}"
    if hi is not None:
        return f"<= {hi}"
    return ""


@dataclass
class AtariConfig:
    """DeepMind Atari preprocessing (Mnih et al. 2015), built from gymnasium's wrappers.

    The ALE environment is made with ``frameskip=1``; ``AtariPreprocessing`` then repeats each
    action ``frame_skip`` times, max-pools the last two frames, converts to 84x84 grayscale and
    starts episodes with up to ``noop_max`` no-ops; ``FrameStackObservation`` stacks frames.
    """

    frame_skip: int = 4
    """Frames each action is repeated for (max-pooled over the last two), in [1, 16]."""
    screen_size: int = 84
    """Side of the square grayscale frame, in [16, 256]."""
    noop_max: int = 30
    """At most this many no-op actions at the start of each episode (0: none), in [0, 1000]."""
    frame_stack: int = 4
    """Frames stacked into one observation [frame_stack, screen, screen], in [1, 16]."""
    terminal_on_life_loss: bool = True
    """Training only: a lost life ends n-step returns (no bootstrap) while the game goes on.
    Evaluation and reported episode returns always play whole games."""
    clip_rewards: bool = True
    """Training only: rewards clipped to [-1, 1]; reported returns are unclipped."""
    repeat_action_probability: float = 0.25
    """Sticky actions of ALE v5 (Machado et al. 2018; 0 for the original DQN setting), [0, 1)."""
    full_action_space: bool = False
    """Use all 18 ALE actions instead of the game's minimal set."""

    def __post_init__(self) -> None:
        check_int("env.atari.frame_skip", self.frame_skip, lo=1, hi=16)
        check_int("env.atari.screen_size", self.screen_size, lo=16, hi=256)
        check_int("env.atari.noop_max", self.noop_max, lo=0, hi=1000)
        check_int("env.atari.frame_stack", self.frame_stack, lo=1, hi=16)
        check_float(
            "env.atari.repeat_action_probability",
            self.repeat_action_probability,
            lo=0.0,
            hi=1.0,
            hi_open=True,
        )


@dataclass
class EnvConfig:
    """Which environment the actors and the evaluator run."""

    id: str = "CartPole-v1"
    """Gymnasium id; needs a Discrete action space and a vector (1-D Box) observation, or an
    ALE id (e.g. ALE/Pong-v5) together with ``env.atari`` (``env=atari`` sets both)."""
    max_episode_steps: int | None = None
    """Override of the spec's time limit in agent steps (None: the registered one)."""
    atari: AtariConfig | None = None
    """Atari preprocessing (None: a plain gymnasium environment)."""

    def __post_init__(self) -> None:
        if not isinstance(self.id, str) or not self.id:
            raise ConfigError(f"env.id must be a non-empty gymnasium id, got {self.id!r}")
        if self.max_episode_steps is not None:
            check_int("env.max_episode_steps", self.max_episode_steps, lo=1)


@dataclass
class NetworkConfig:
    """The Q-network shared by learner, actors and evaluator."""

    torso: str = "mlp"
    """Feature extractor: mlp (vector observations), nature (84x84 frame stacks) or minatar
    (MinAtar's 10x10 grids: one 16-filter 3x3 convolution and 128 units)."""
    hidden_sizes: list[int] = field(default_factory=lambda: [128, 128])
    """Widths of the MLP hidden layers (each >= 1)."""
    dueling: bool = True
    """Dueling head Q = V + A - mean(A) (Wang et al. 2016)."""

    def __post_init__(self) -> None:
        check_choice("network.torso", self.torso, ("mlp", "nature", "minatar"))
        if not self.hidden_sizes:
            raise ConfigError("network.hidden_sizes must list at least one width >= 1, got []")
        for i, h in enumerate(self.hidden_sizes):
            check_int(f"network.hidden_sizes[{i}]", h, lo=1, hi=65536)


@dataclass
class AlgoConfig:
    """The DQN variant: discounting and n-step targets (used by actors and learner alike)."""

    gamma: float = 0.99
    """Discount factor, in (0, 1]."""
    n_step: int = 5
    """Rewards summed before bootstrapping, in [1, 100]. Ape-X used 3 on Atari; 5 propagates
    values faster and solved CartPole-v1 in about half the updates here (docs/benchmarks.md)."""
    double_q: bool = True
    """Double DQN target: online argmax, target-network value (van Hasselt et al. 2016)."""

    def __post_init__(self) -> None:
        check_float("algo.gamma", self.gamma, lo=0.0, hi=1.0, lo_open=True)
        check_int("algo.n_step", self.n_step, lo=1, hi=100)


@dataclass
class ActorsConfig:
    """The acting processes: each steps a vector of environments with its own epsilon."""

    num_actors: int = 2
    """Number of actor processes, >= 1."""
    envs_per_actor: int = 8
    """Environments stepped in lock-step by one actor with one batched forward pass, >= 1."""
    eps_base: float = 0.4
    """Ape-X exploration: actor i of N uses eps_base ** (1 + eps_alpha * i / (N - 1))."""
    eps_alpha: float = 7.0
    """Ape-X exploration exponent spread, >= 0."""
    push_every: int = 128
    """Transitions gathered before one batch is pushed to a replay shard, >= 1."""
    sync_every: int = 400
    """Environment steps (summed over the actor's envs) between weight pulls, >= 1."""
    steps_per_call: int = 64
    """Vector-env steps per remote call; bounds how often the actor yields to Ray, >= 1."""
    min_replay_ratio: float = 4.0
    """Actors pause while samples drawn per transition inserted is below this, leaving the CPU
    to the learner on a shared machine (0: never pause); must be < learner.max_replay_ratio."""
    max_pending_pushes: int = 2
    """Pushes in flight per actor before it waits (backpressure), >= 1."""
    num_cpus: float = 0.25
    """Ray CPUs reserved per actor (fractional is fine), in [0, 64]."""
    nice: int = 5
    """Niceness added to actor processes, so the learner wins a shared CPU, in [0, 19]."""
    max_env_errors: int = 10
    """An environment that raises is reset and counted; this many errors in a row (no
    successful step between them) stop the run with the error, >= 1."""
    amp: Any = False
    """CNN actors act (and compute priorities) under CPU bf16 autocast: 1.7x faster forward
    passes on CPUs with native bf16 (AVX512-BF16, AMX), much slower on others; true, false, or
    auto (on where the CPU has native bf16). MLP actors (numpy) ignore it."""
    spread: bool = True
    """Spread actors over the nodes that offer CPUs (Ray's SPREAD strategy); false: Ray packs
    them where it likes."""
    vector_mode: str = "sync"
    """How an actor steps its envs: sync (in the actor process), async (one subprocess per
    env, gymnasium's AsyncVectorEnv) or ale (Atari only: ale-py's C++ vector env, stepping in
    a thread that releases the GIL); docs/atari.md has the measured trade-offs."""
    pipeline: bool = False
    """Split an actor's envs into two lanes: one lane steps its envs while the other's forward
    pass runs in a helper thread (pays off for CNN actors with a spare core); needs
    envs_per_actor >= 2."""

    def __post_init__(self) -> None:
        check_int("actors.num_actors", self.num_actors, lo=1, hi=4096)
        check_int("actors.envs_per_actor", self.envs_per_actor, lo=1, hi=4096)
        if self.pipeline and self.envs_per_actor < 2:
            raise ConfigError(
                "actors.pipeline=true needs actors.envs_per_actor >= 2 (two lanes of envs), "
                f"got {self.envs_per_actor}"
            )
        check_float("actors.eps_base", self.eps_base, lo=0.0, hi=1.0)
        check_float("actors.eps_alpha", self.eps_alpha, lo=0.0)
        check_int("actors.push_every", self.push_every, lo=1)
        check_int("actors.sync_every", self.sync_every, lo=1)
        check_int("actors.steps_per_call", self.steps_per_call, lo=1)
        check_int("actors.max_pending_pushes", self.max_pending_pushes, lo=1)
        check_float("actors.min_replay_ratio", self.min_replay_ratio, lo=0.0)
        check_float("actors.num_cpus", self.num_cpus, lo=0.0, hi=64.0)
        check_int("actors.nice", self.nice, lo=0, hi=19)
        check_int("actors.max_env_errors", self.max_env_errors, lo=1)
        check_choice("actors.vector_mode", self.vector_mode, ("sync", "async", "ale"))
        if not (isinstance(self.amp, bool) or self.amp == "auto"):
            raise ConfigError(f"actors.amp must be one of true, false, auto; got {self.amp!r}")


@dataclass
class ReplayConfig:
    """Sharded prioritized replay (Schaul et al. 2016; Ape-X sharding)."""

    capacity: int = 100_000
    """Transitions held by the whole replay, split evenly across shards, >= 1."""
    num_shards: int = 1
    """Replay shard processes, >= 1."""
    alpha: float = 0.6
    """Priority exponent: P(i) proportional to p_i ** alpha, in [0, 1]."""
    beta_start: float = 0.4
    """Initial importance-sampling exponent, in [0, 1]."""
    beta_end: float = 1.0
    """Final importance-sampling exponent, in [0, 1]."""
    beta_anneal_steps: int = 20_000
    """Learner updates over which beta goes linearly from beta_start to beta_end, >= 1."""
    priority_eps: float = 1e-6
    """Floor added to priorities so that no transition becomes unsampleable, > 0."""
    min_size_to_learn: int = 500
    """Transitions the whole replay must hold before the learner starts, >= 1."""
    num_cpus: float = 0.05
    """Ray CPUs reserved per shard, in [0, 64]."""
    placement: str = "colocate"
    """Where shards run: colocate (with the learner, one placement group packed on its node:
    batches never cross the network), spread (over the nodes), or any (Ray decides)."""
    frame_dedup: bool = True
    """With env=atari: store each frame once and rebuild stacks when sampling (about 8x less
    memory than keeping s_t and s_t+m per transition); false stores stacks as they come."""
    snapshot_every_s: float = 0.0
    """Seconds between snapshots of each shard to <run dir>/replay/ (0: off); a run that
    stops writes them once more. A restarted shard, and a resumed run, reload them; without,
    a shard comes back empty. >= 0."""

    def __post_init__(self) -> None:
        check_float("replay.snapshot_every_s", self.snapshot_every_s, lo=0.0)
        check_int("replay.capacity", self.capacity, lo=1)
        check_int("replay.num_shards", self.num_shards, lo=1, hi=1024)
        check_float("replay.alpha", self.alpha, lo=0.0, hi=1.0)
        check_float("replay.beta_start", self.beta_start, lo=0.0, hi=1.0)
        check_float("replay.beta_end", self.beta_end, lo=0.0, hi=1.0)
        check_int("replay.beta_anneal_steps", self.beta_anneal_steps, lo=1)
        check_float("replay.priority_eps", self.priority_eps, lo=0.0, lo_open=True)
        check_int("replay.min_size_to_learn", self.min_size_to_learn, lo=1)
        check_float("replay.num_cpus", self.num_cpus, lo=0.0, hi=64.0)
        check_choice("replay.placement", self.placement, ("colocate", "spread", "any"))


@dataclass
class LearnerConfig:
    """The learner: samples prioritized batches and updates the Q-network."""

    batch_size: int = 64
    """Transitions per update (Ape-X used 512), >= 1."""
    lr: float = 4e-3
    """Adam learning rate, in (0, 1]."""
    adam_eps: float = 1e-8
    """Adam epsilon, > 0."""
    grad_clip: float = 10.0
    """Max global gradient norm (0 disables clipping), >= 0."""
    huber_delta: float = 1.0
    """Huber loss threshold, > 0."""
    target_update_period: int = 50
    """Updates between copies of the online network into the target network (Ape-X: 2500);
    used when target_update_tau is 0, >= 1."""
    target_update_tau: float = 0.0
    """Polyak averaging: after every update target <- (1 - tau) * target + tau * online (0:
    hard copies every target_update_period updates instead), in [0, 1]."""
    publish_every: int = 10
    """Updates between weight publications to the parameter server, >= 1."""
    prefetch: int = 2
    """Sample requests kept in flight so the learner never waits on the replay, [1, 64]."""
    batches_per_request: int = 4
    """Batches one sample request brings back (amortises Ray's per-call cost), [1, 64]."""
    max_replay_ratio: float = 8.0
    """Max transitions sampled per transition inserted; the learner waits beyond it (0: off)."""
    actor_correction: bool = False
    """Also weight each n-step sample by the importance ratio, truncated at 1, of the actions
    inside its return from its actor's epsilon-greedy policy to the mixture of all actors'
    (weighted by their share of the sampled data); docs/how-it-works.md."""
    device: str = "auto"
    """auto (CUDA when available, else CPU), cpu, cuda or cuda:<index>."""
    num_cpus: float = 1.0
    """Ray CPUs for the learner process; torch uses max(1, int(num_cpus)) threads, [0, 256]."""
    num_gpus: float = 0.0
    """Ray GPUs for the learner; 'auto' device asks for 1 when the cluster has a GPU, [0, 8]."""
    resources: dict[str, float] = field(default_factory=dict)
    """Custom Ray resources the learner asks for, e.g. {learner: 1} to pin it to the node that
    offers them (launch/*.yaml give the head node learner: 1); never an IP."""
    amp: Any = False
    """bf16 autocast for the forward passes (loss and targets stay float32): true, false, or
    auto (on a CPU with native bf16 instructions, e.g. AVX512-BF16 or AMX; off on CUDA, where
    it pays off only for large networks and batches: docs/atari.md)."""
    compile: bool = False
    """torch.compile the Q-network (the first updates are slow while it compiles)."""
    pin_memory: bool = True
    """On CUDA: stage batches in pinned host memory and copy them on a side stream, while
    earlier updates run (no effect on CPU)."""
    num_learners: int = 1
    """Learner actors, [1, 64]; each samples its own batches, and their gradients are averaged
    with torch.distributed before every step (effective batch num_learners x batch_size).
    Each one reserves num_cpus, num_gpus and resources. Needs runtime=ray when > 1."""
    dist_backend: str = "auto"
    """torch.distributed backend of several learners: auto (nccl on CUDA, gloo on CPU), gloo
    or nccl. NCCL needs a GPU of its own per learner; learners sharing a GPU use gloo."""

    def __post_init__(self) -> None:
        check_int("learner.batch_size", self.batch_size, lo=1, hi=1 << 20)
        check_float("learner.lr", self.lr, lo=0.0, hi=1.0, lo_open=True)
        check_float("learner.adam_eps", self.adam_eps, lo=0.0, lo_open=True)
        check_float("learner.grad_clip", self.grad_clip, lo=0.0)
        check_float("learner.huber_delta", self.huber_delta, lo=0.0, lo_open=True)
        check_int("learner.target_update_period", self.target_update_period, lo=1)
        check_float("learner.target_update_tau", self.target_update_tau, lo=0.0, hi=1.0)
        if not (isinstance(self.amp, bool) or self.amp == "auto"):
            raise ConfigError(f"learner.amp must be one of true, false, auto; got {self.amp!r}")
        check_int("learner.publish_every", self.publish_every, lo=1)
        check_int("learner.prefetch", self.prefetch, lo=1, hi=64)
        check_int("learner.batches_per_request", self.batches_per_request, lo=1, hi=64)
        check_float("learner.max_replay_ratio", self.max_replay_ratio, lo=0.0)
        dev = self.device
        if not (dev in ("auto", "cpu", "cuda") or (dev.startswith("cuda:") and dev[5:].isdigit())):
            raise ConfigError(
                f"learner.device must be one of auto, cpu, cuda, cuda:<index>; got {dev!r}"
            )
        check_float("learner.num_cpus", self.num_cpus, lo=0.0, hi=256.0)
        check_float("learner.num_gpus", self.num_gpus, lo=0.0, hi=8.0)
        for name, amount in self.resources.items():
            check_float(f"learner.resources.{name}", amount, lo=0.0, lo_open=True)
        check_int("learner.num_learners", self.num_learners, lo=1, hi=64)
        check_choice("learner.dist_backend", self.dist_backend, ("auto", "gloo", "nccl"))
        if self.dist_backend == "nccl" and self.device == "cpu":
            raise ConfigError(
                "learner.dist_backend=nccl needs a CUDA learner (learner.device=auto, cuda or "
                "cuda:<index>); CPU learners use gloo"
            )


@dataclass
class EvalConfig:
    """Greedy evaluation of the latest weights, by a separate actor."""

    enabled: bool = True
    """false: no evaluator and no evaluations (throughput runs); train.target_return then
    never stops the run and the learning curve stays empty."""
    episodes: int = 10
    """Episodes per evaluation (run in parallel as a vector env), >= 1."""
    interval_s: float = 0.5
    """Minimum seconds between the starts of two evaluations, >= 0."""
    num_cpus: float = 0.05
    """Ray CPUs reserved for the evaluator, in [0, 64]."""
    epsilon: float = 0.0
    """Chance of a random action during evaluation (Atari evaluations commonly use 0.001 to
    0.05 so that a greedy policy cannot stall a game forever), in [0, 1]."""

    def __post_init__(self) -> None:
        check_int("eval.episodes", self.episodes, lo=1, hi=10_000)
        check_float("eval.epsilon", self.epsilon, lo=0.0, hi=1.0)
        check_float("eval.interval_s", self.interval_s, lo=0.0)
        check_float("eval.num_cpus", self.num_cpus, lo=0.0, hi=64.0)


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


@dataclass
class RayConfig:
    """How to reach Ray."""

    address: str | None = None
    """None: start a local instance (RAY_ADDRESS is honoured); 'auto' or host:port: connect."""
    num_cpus: int | None = None
    """CPUs of a local instance (None: the machine's count), >= 1."""
    object_store_memory: int | None = None
    """Bytes for a local instance's object store (None: Ray's default), >= 75 MiB."""
    parameter_server_num_cpus: float = 0.0
    """Ray CPUs reserved for the parameter server (it only stores references), in [0, 64]."""

    def __post_init__(self) -> None:
        if self.num_cpus is not None:
            check_int("ray.num_cpus", self.num_cpus, lo=1)
        if self.object_store_memory is not None:
            check_int("ray.object_store_memory", self.object_store_memory, lo=75 * 1024 * 1024)
        check_float("ray.parameter_server_num_cpus", self.parameter_server_num_cpus, lo=0, hi=64)


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
