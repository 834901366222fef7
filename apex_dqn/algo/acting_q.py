"""The Q-functions actors and the evaluator act with, and the actors' initial priorities.

Acting needs one forward pass of a network on a handful of observations. For MLPs numpy does
that faster than torch at these sizes (``NumpyMLPQ``), and it spares actor and evaluator
processes the import of torch (about a second of CPU each at start-up, which on a small machine
delays the first transitions). Keys and shapes are those of ``networks.QNetwork``'s state dict
(``torso.<i>`` for the Linear layers, then ``value_head`` and ``advantage_head``, or
``q_head``), so the weights the learner publishes load unchanged. Convolutional (nature,
minatar) torsos act with torch behind the same two methods (``TorchQ``); ``build_acting_q``
picks one. ``abs_td`` is the actors' |TD error|, their initial priorities.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from apex_dqn.config import NetworkConfig


def mlp_weight_shapes(
    obs_dim: int, hidden_sizes: tuple[int, ...], num_actions: int, dueling: bool
) -> dict[str, tuple[int, ...]]:
    """State-dict keys and shapes of an MLP ``QNetwork`` (Flatten, then Linear + ReLU pairs)."""
    shapes: dict[str, tuple[int, ...]] = {}
    width = obs_dim
    for k, size in enumerate(hidden_sizes):
        shapes[f"torso.{1 + 2 * k}.weight"] = (size, width)
        shapes[f"torso.{1 + 2 * k}.bias"] = (size,)
        width = size
    heads = {"value_head": 1, "advantage_head": num_actions} if dueling else {"q_head": num_actions}
    for name, out in heads.items():
        shapes[f"{name}.weight"] = (out, width)
        shapes[f"{name}.bias"] = (out,)
    return shapes


class NumpyMLPQ:
    """Q-values of an MLP ``QNetwork`` computed with numpy (see module docstring).

    Before ``set_weights`` it holds its own initial weights, drawn like torch's Linear default
    (uniform in +-1/sqrt(fan_in)) from ``seed``.
    """

    def __init__(
        self,
        *,
        obs_dim: int,
        hidden_sizes: tuple[int, ...],
        num_actions: int,
        dueling: bool,
        seed: int,
    ) -> None:
        self.dueling = dueling
        self._shapes = mlp_weight_shapes(obs_dim, tuple(hidden_sizes), num_actions, dueling)
        self._num_hidden = len(hidden_sizes)
        rng = np.random.default_rng(seed)
        weights = {}
        for key, shape in self._shapes.items():
            fan_in = self._shapes[key.rsplit(".", 1)[0] + ".weight"][1]
            bound = 1.0 / math.sqrt(fan_in)
            weights[key] = rng.uniform(-bound, bound, shape).astype(np.float32)
        self.set_weights(weights)

    def set_weights(self, weights: dict[str, np.ndarray]) -> None:
        """Load a numpy state dict of the matching network (keys and shapes must match)."""
        if set(weights) != set(self._shapes):
            raise ValueError(
                f"weights have keys {sorted(weights)}, expected {sorted(self._shapes)}"
            )
        loaded = {}
        for key, shape in self._shapes.items():
            array = np.asarray(weights[key], dtype=np.float32)
            if array.shape != shape:
                raise ValueError(f"{key} has shape {array.shape}, expected {shape}")
            # Transposed once here, so that the forward pass is x @ W.
            loaded[key] = np.ascontiguousarray(array.T if array.ndim == 2 else array)
        self._layers = [
            (loaded[f"torso.{1 + 2 * k}.weight"], loaded[f"torso.{1 + 2 * k}.bias"])
            for k in range(self._num_hidden)
        ]
        heads = ("value_head", "advantage_head") if self.dueling else ("q_head",)
        self._heads = [(loaded[f"{h}.weight"], loaded[f"{h}.bias"]) for h in heads]

    def q_values(self, obs: np.ndarray) -> np.ndarray:
        """Q-values, float32, shape [N, A], for observations of shape [N, obs_dim]."""
        x = np.asarray(obs, dtype=np.float32).reshape(len(obs), -1)
        for w, b in self._layers:
            x = x @ w
            x += b
            np.maximum(x, 0.0, out=x)
        if not self.dueling:
            w, b = self._heads[0]
            return x @ w + b
        (wv, bv), (wa, ba) = self._heads
        value = x @ wv + bv
        adv = x @ wa + ba
        return value + adv - adv.mean(axis=1, keepdims=True)


def abs_td(
    *,
    q_taken_B: np.ndarray,
    next_v_B: np.ndarray,
    return_B: np.ndarray,
    discount_B: np.ndarray,
    done_B: np.ndarray,
) -> np.ndarray:
    """|G + (1 - done) * gamma^m * V(s') - Q(s, a)|, float32, from Q(s, a) and V(s') given."""
    target_B = return_B + (1.0 - done_B.astype(np.float32)) * discount_B * next_v_B
    return np.abs(target_B - q_taken_B).astype(np.float32)


class TorchQ:
    """``NumpyMLPQ``'s interface over a torch ``QNetwork`` (for torsos numpy does not run).

    Acting runs the eager module under ``torch.inference_mode``, and ``set_weights`` copies into
    its parameters in place: nothing made from earlier weights can act with stale ones (and
    with no parameter requiring gradients, bf16 autocast caches no weight copies).

    Measured with ``benchmarks/acting_bench.py`` (docs/figures/acting_*.json) on a 2-core AMD
    EPYC without native bf16, batch 16, 1 torch thread, 21 alternating rounds: a pass on Pong
    stacks took 6.6 ms, as long as with the deprecated TorchScript trace it replaces (6.5 ms);
    on MinAtar Breakout 0.36 ms against the trace's 0.30 ms (the module's Python overhead).
    Channels-last memory was no faster, ``torch.compile`` 5% (Pong) to 57% (MinAtar) slower,
    and it costs an import of ``torch._dynamo`` (1.2-1.4 s of CPU), 6-10 s to compile and 1-4 s
    more for each new batch size. The trace held the GIL for less of a pass (a counting thread
    beside Pong passes lost about 2 ms of it per pass, against 6-7 ms beside the eager module),
    yet a Pong actor in two pipelined lanes (``experiment=pong``, 16 envs) stepped as fast with
    the eager module: 1,296 and 1,232 env steps/s against the trace's 1,252 in two runs. bf16
    emulated on this CPU made a Pong pass 15 times slower, hence ``bf16="auto"``.

    With bf16 the module's weights are kept in bf16 (loaded weights are converted as they are
    copied in), so that autocast casts only the activations, not every weight on every pass
    as it would for float32 parameters. That case (a CPU with native bf16, where the trace
    took 3.2 ms and the eager float32 module under autocast 7.7 ms) is not measured yet: it
    needs a CPU with native bf16 (``avx512_bf16`` or AMX), which the machines at hand lack.

    torch is imported here, not at module level, so that MLP actors never load it.
    """

    def __init__(
        self,
        network: NetworkConfig,
        *,
        obs_shape: tuple[int, ...],
        num_actions: int,
        seed: int,
        bf16: bool | str = False,
    ) -> None:
        import torch

        from apex_dqn.algo.networks import build_q_network, cpu_has_native_bf16

        self._bf16 = cpu_has_native_bf16() if bf16 == "auto" else bool(bf16)

        with torch.random.fork_rng(devices=[]):  # seeded init, global RNG untouched
            torch.manual_seed(seed)
            self._net = build_q_network(network, obs_shape=obs_shape, num_actions=num_actions)
        self._net.eval().requires_grad_(False)
        if self._bf16:
            self._net.to(torch.bfloat16)

    def set_weights(self, weights: dict[str, np.ndarray]) -> None:
        """Load a numpy state dict (``networks.get_weights``) into the module, in place."""
        from apex_dqn.algo.networks import set_weights

        set_weights(self._net, weights)

    def q_values(self, obs: np.ndarray) -> np.ndarray:
        """Q-values, float32, shape [N, A]."""
        import torch

        with (
            torch.inference_mode(),
            torch.autocast("cpu", dtype=torch.bfloat16, enabled=self._bf16),
        ):
            return self._net(torch.as_tensor(obs)).float().numpy()


def build_acting_q(
    network: NetworkConfig,
    *,
    obs_shape: tuple[int, ...],
    num_actions: int,
    seed: int,
    bf16: bool | str = False,
) -> Any:
    """The Q-function actors and the evaluator act with: numpy for MLPs, torch otherwise.

    Both have ``set_weights(weights)`` and ``q_values(obs)``; initial weights come from ``seed``.
    ``bf16`` runs a torch network's forward pass under CPU bf16 autocast (MLPs ignore it);
    "auto" turns it on where the CPU has native bf16.
    """
    if network.torso == "mlp":
        return NumpyMLPQ(
            obs_dim=int(np.prod(obs_shape)),
            hidden_sizes=tuple(network.hidden_sizes),
            num_actions=num_actions,
            dueling=network.dueling,
            seed=seed,
        )
    return TorchQ(network, obs_shape=obs_shape, num_actions=num_actions, seed=seed, bf16=bf16)
