"""Q-networks and the conversion of their weights to plain numpy.

This module owns the Q-network architectures: an MLP torso for vector observations, the Nature
DQN convolutional torso (Mnih et al., 2015) for stacked [C, 84, 84] uint8 frames, the MinAtar
torso (Young & Tian, 2019: one 16-filter 3x3 convolution and a 128-unit layer) for [C, 10, 10]
0/1 grids, and either a
plain linear head or a dueling head Q = V + A - mean_a A (Wang et al., 2016). It also turns
weights into dicts of numpy arrays and back, so they travel through Ray's object store without
pickling torch tensors.
"""

from __future__ import annotations

import hashlib
import math
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from apex_dqn.config import NetworkConfig

TORSOS = ("mlp", "nature", "minatar")
NATURE_HIDDEN = 512
MINATAR_FILTERS = 16
MINATAR_HIDDEN = 128


class QNetwork(nn.Module):
    """Maps observations to one Q-value per action.

    Submodules: ``torso`` (observations -> features); with ``dueling``, ``value_head``
    (features -> [B, 1]) and ``advantage_head`` (features -> [B, A]); without, ``q_head``
    (features -> [B, A]).

    For ``torso="mlp"`` the torso is every hidden layer (Linear + ReLU for each of
    ``hidden_sizes``) and each head is a single Linear layer. For ``torso="nature"`` the torso is
    the three convolutions, and each head is Linear(features, 512) + ReLU + Linear(512, out).
    For ``torso="minatar"`` the torso is the convolution and the 128-unit layer (shared by the
    dueling streams, as in the reference network), and each head is one Linear layer.
    ``hidden_sizes`` is used by "mlp" only.
    """

    def __init__(
        self,
        *,
        obs_shape: tuple[int, ...],
        num_actions: int,
        hidden_sizes: tuple[int, ...] = (256, 256),
        dueling: bool = True,
        torso: str = "mlp",
        layer_norm: bool = False,
    ) -> None:
        """Builds the network.

        Args:
            obs_shape: shape of one observation; [C, H, W] for "nature" (Atari: [4, 84, 84]) and
                "minatar" ([C, 10, 10]).
            num_actions: number of discrete actions A, >= 1.
            hidden_sizes: widths of the MLP torso's hidden layers ("mlp" only); may be empty.
            dueling: use the dueling head (value and advantage streams) instead of a linear one.
            torso: "mlp" (flattens the observation), "nature" (Nature DQN convolutions; inputs
                are scaled by 1/255 inside ``forward``) or "minatar" (inputs are 0/1 already).
            layer_norm: a LayerNorm before every hidden ReLU of a convolutional torso and its
                heads (``ChannelNorm`` after a convolution), as PQN's networks have.

        Raises:
            ValueError: for an unknown torso, or an observation shape the torso cannot take.
        """
        super().__init__()
        if torso not in TORSOS:
            raise ValueError(f"unknown torso {torso!r}; allowed values: {', '.join(TORSOS)}")
        if layer_norm and torso == "mlp":
            raise ValueError("layer_norm needs a convolutional torso (nature or minatar)")
        if num_actions < 1:
            raise ValueError(f"num_actions must be >= 1, got {num_actions}")
        self.obs_shape = tuple(obs_shape)
        self.num_actions = num_actions
        self.dueling = dueling
        self.torso_name = torso
        hidden: int | None = None
        if torso == "mlp":
            self.torso, features = _mlp_torso(self.obs_shape, hidden_sizes)
        elif torso == "minatar":
            self.torso, features = _minatar_torso(self.obs_shape, layer_norm)
        else:
            self.torso, features = _nature_torso(self.obs_shape, layer_norm)
            hidden = NATURE_HIDDEN
        if dueling:
            self.value_head = _head(features, hidden, 1, layer_norm)
            self.advantage_head = _head(features, hidden, num_actions, layer_norm)
        else:
            self.q_head = _head(features, hidden, num_actions, layer_norm)

    def forward(self, obs: Tensor) -> Tensor:
        """Q-values for a batch of observations.

        Args:
            obs: observations, shape [B, *obs_shape], float or uint8.

        Returns:
            q_BA, float32, shape [B, A].
        """
        x = obs.to(torch.float32)
        if self.torso_name == "nature":
            x = x / 255.0
        features = self.torso(x)
        if not self.dueling:
            return self.q_head(features)
        value_B1 = self.value_head(features)
        adv_BA = self.advantage_head(features)
        # Q = V + A - mean_a A: the mean-zero advantage makes V and A identifiable.
        return value_B1 + adv_BA - adv_BA.mean(dim=1, keepdim=True)


def _mlp_torso(obs_shape: tuple[int, ...], hidden_sizes: tuple[int, ...]) -> tuple[nn.Module, int]:
    """Flatten, then Linear + ReLU per hidden size; returns the module and its output width."""
    layers: list[nn.Module] = [nn.Flatten()]
    width = math.prod(obs_shape)
    for size in hidden_sizes:
        layers += [nn.Linear(width, size), nn.ReLU()]
        width = size
    return nn.Sequential(*layers), width


class ChannelNorm(nn.Module):
    """LayerNorm over the channels of a [B, C, H, W] map, at each position on its own (what a
    LayerNorm over the last axis does to channels-last maps, as in PQN's networks)."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.norm = nn.LayerNorm(channels)

    def forward(self, x: Tensor) -> Tensor:
        """Normalize ``x`` [B, C, H, W] over C."""
        return self.norm(x.permute(0, 2, 3, 1)).permute(0, 3, 1, 2)


def _conv_block(conv: nn.Conv2d, layer_norm: bool) -> list[nn.Module]:
    """A convolution, with ``ChannelNorm`` when ``layer_norm``, and its ReLU."""
    norm = [ChannelNorm(conv.out_channels)] if layer_norm else []
    return [conv, *norm, nn.ReLU()]


def _dense_block(linear: nn.Linear, layer_norm: bool) -> list[nn.Module]:
    """A Linear layer, with a LayerNorm when ``layer_norm``, and its ReLU."""
    norm = [nn.LayerNorm(linear.out_features)] if layer_norm else []
    return [linear, *norm, nn.ReLU()]


def _nature_torso(obs_shape: tuple[int, ...], layer_norm: bool = False) -> tuple[nn.Module, int]:
    """The Nature DQN convolutions (32 8x8 s4, 64 4x4 s2, 64 3x3 s1) and a flatten."""
    if len(obs_shape) != 3:
        raise ValueError(f"the nature torso needs obs_shape [C, H, W], got {obs_shape}")
    torso = nn.Sequential(
        *_conv_block(nn.Conv2d(obs_shape[0], 32, kernel_size=8, stride=4), layer_norm),
        *_conv_block(nn.Conv2d(32, 64, kernel_size=4, stride=2), layer_norm),
        *_conv_block(nn.Conv2d(64, 64, kernel_size=3, stride=1), layer_norm),
        nn.Flatten(),
    )
    with torch.no_grad():
        # 3136 = 64 * 7 * 7 for 84x84 frames; computed so that other frame sizes work too.
        width = torso(torch.zeros(1, *obs_shape)).shape[1]
    return torso, int(width)


def _minatar_torso(obs_shape: tuple[int, ...], layer_norm: bool = False) -> tuple[nn.Module, int]:
    """MinAtar's reference torso: Conv(16, 3x3, stride 1) + ReLU, then Linear(128) + ReLU."""
    if len(obs_shape) != 3:
        raise ValueError(f"the minatar torso needs obs_shape [C, H, W], got {obs_shape}")
    channels, height, width = obs_shape
    conv_out = MINATAR_FILTERS * (height - 2) * (width - 2)  # 3x3, no padding: 10x10 -> 8x8
    torso = nn.Sequential(
        *_conv_block(nn.Conv2d(channels, MINATAR_FILTERS, kernel_size=3, stride=1), layer_norm),
        nn.Flatten(),
        *_dense_block(nn.Linear(conv_out, MINATAR_HIDDEN), layer_norm),
    )
    return torso, MINATAR_HIDDEN


def _head(features: int, hidden: int | None, out: int, layer_norm: bool = False) -> nn.Module:
    """Linear(features, out), or Linear (+ LayerNorm) + ReLU + Linear through ``hidden``."""
    if hidden is None:
        return nn.Linear(features, out)
    return nn.Sequential(
        *_dense_block(nn.Linear(features, hidden), layer_norm), nn.Linear(hidden, out)
    )


def dead_units(net: nn.Module, obs: Tensor) -> dict[str, float]:
    """The fraction of each hidden layer's units that no observation in ``obs`` activates.

    A unit is a ReLU's output feature; a convolution's channel counts as one unit, active if it
    is positive at any position. A dead unit passes no gradient to the weights that feed it:
    the network has lost that capacity (Sokar et al. 2023's dormant units with tau = 0, on
    this batch). Keys are the ReLUs' module names (``torso.1``, ``value_head.1``...) and
    ``all``, the fraction over every hidden unit together.
    """
    counts: dict[str, tuple[int, int]] = {}

    def hook(name: str) -> Any:
        def record(module: nn.Module, inputs: Any, output: Tensor) -> None:
            alive = output.detach() > 0  # [B, units] or [B, channels, H, W]
            per_unit = alive.flatten(2).any(dim=2) if alive.dim() > 2 else alive
            fired = per_unit.any(dim=0)
            counts[name] = (int((~fired).sum()), int(fired.numel()))

        return record

    handles = [
        module.register_forward_hook(hook(name))
        for name, module in net.named_modules()
        if isinstance(module, nn.ReLU)
    ]
    try:
        with torch.no_grad():
            net(obs)
    finally:
        for handle in handles:
            handle.remove()
    dead, total = (sum(c[i] for c in counts.values()) for i in (0, 1))
    fractions = {name: d / n for name, (d, n) in counts.items()}
    fractions["all"] = dead / total if total else 0.0
    return fractions


def get_weights(net: nn.Module) -> dict[str, np.ndarray]:
    """CPU numpy copies of ``net.state_dict()``, safe to ship through Ray without torch pickling."""
    return {k: v.detach().cpu().numpy().copy() for k, v in net.state_dict().items()}


def weights_digest(weights: dict[str, np.ndarray]) -> str:
    """SHA-256 of the weights (keys in order, dtypes, shapes and bytes): equal iff identical."""
    h = hashlib.sha256()
    for key in sorted(weights):
        array = np.ascontiguousarray(weights[key])
        h.update(f"{key}:{array.dtype.str}:{array.shape};".encode())
        h.update(array.tobytes())
    return h.hexdigest()


def cpu_has_native_bf16() -> bool:
    """Whether this CPU runs bf16 natively (AVX512-BF16, AMX); emulated bf16 is slower than
    float32, so ``amp=auto`` settings turn bf16 on only where this is true."""
    try:  # a private probe (absent from builds without oneDNN): no answer means no bf16
        return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
    except (AttributeError, RuntimeError):
        return False


def set_weights(net: nn.Module, weights: dict[str, np.ndarray]) -> None:
    """Loads weights from ``get_weights`` into ``net`` (on whatever device it lives).

    Args:
        net: the module to update in place.
        weights: parameter and buffer arrays by state-dict key; the key sets must match exactly.
            Arrays may be read-only (as Ray's zero-copy arrays are): they are copied.
    """
    state = {k: torch.from_numpy(np.array(v, copy=True)) for k, v in weights.items()}
    net.load_state_dict(state, strict=True)


def build_q_network(
    network: NetworkConfig, *, obs_shape: tuple[int, ...], num_actions: int
) -> QNetwork:
    """The Q-network that ``network`` describes, for this observation shape and action count."""
    return QNetwork(
        obs_shape=obs_shape,
        num_actions=num_actions,
        hidden_sizes=tuple(network.hidden_sizes),
        dueling=network.dueling,
        torso=network.torso,
        layer_norm=network.layer_norm,
    )
