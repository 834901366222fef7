"""The env, network and algo sections: what is learned, from what, with which update rule."""

from __future__ import annotations

from dataclasses import dataclass, field

from apex_dqn.config.checks import ConfigError, check_choice, check_float, check_int


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
    layer_norm: bool = False
    """LayerNorm before every hidden ReLU, over a convolution's channels at each position (as
    PQN, Gallici et al. 2024): keeps units from dying. Convolutional torsos only (nature,
    minatar)."""

    def __post_init__(self) -> None:
        check_choice("network.torso", self.torso, ("mlp", "nature", "minatar"))
        if self.layer_norm and self.torso == "mlp":
            raise ConfigError(
                "network.layer_norm=true needs network.torso nature or minatar, got mlp"
            )
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
