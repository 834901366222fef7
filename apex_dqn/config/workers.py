"""The actors, replay, learner and eval sections: the roles of an Ape-X run and their knobs."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from apex_dqn.config.checks import (
    ConfigError,
    check_bool_or_auto,
    check_choice,
    check_float,
    check_int,
    check_int_or_auto,
)


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
    nice: Any = "auto"
    """Niceness added to actor processes, so the learner wins a shared CPU: an integer in
    [0, 19], or auto: 5, raised with the number of actors until all of them together weigh no
    more than one process at the learner's niceness in Linux's scheduler (19 from 64 actors)."""
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
        if self.nice != "auto":
            try:
                check_int("actors.nice", self.nice, lo=0, hi=19)
            except ConfigError:
                raise ConfigError(
                    f"actors.nice must be auto or an integer in [0, 19], got {self.nice!r}"
                ) from None
        check_int("actors.max_env_errors", self.max_env_errors, lo=1)
        check_choice("actors.vector_mode", self.vector_mode, ("sync", "async", "ale"))
        check_bool_or_auto("actors.amp", self.amp)


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
    """Ray CPUs for the learner process, [0, 256]."""
    num_threads: Any = "auto"
    """Torch threads of the learner process (runtime=ray): auto or an integer in [1, 256].
    auto is max(1, int(num_cpus)), but at least 2 for a CPU learner with the nature torso on a
    node with 2 or more CPUs: its updates run 1.2x faster in a whole Pong run on 2 cores, while
    the MinAtar learner's ran slower (docs/atari.md). Threads are not reserved from Ray: the
    actors, paused while the learner is behind, give them up."""
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
    channels_last: Any = "auto"
    """Keep the learner's networks in the channels-last (NHWC) layout, oneDNN's preferred one on
    CPU: true, false, or auto (on for a CPU learner with the nature torso, where an update of 64
    ran 1.3x faster on one thread and 1.4x on two, float32, docs/atari.md; off elsewhere, where
    it was not measured). Convolutional torsos only; the weights it publishes and checkpoints
    are the same either way."""
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
        check_bool_or_auto("learner.amp", self.amp)
        check_bool_or_auto("learner.channels_last", self.channels_last)
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
        check_int_or_auto("learner.num_threads", self.num_threads, lo=1, hi=256)
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
