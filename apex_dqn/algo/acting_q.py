"""The Q-functions actors and the evaluator act with, and the actors' initial priorities.

Acting needs one forward pass of a network on a handful of observations. For MLPs numpy does
that faster than torch at these sizes (``NumpyMLPQ``), and it spares actor and evaluator
processes the import of torch (about a second of CPU each at start-up, which on a small machine
delays the first transitions). Keys and shapes are those of ``networks.QNetwork``'s state dict
(``torso.<i>`` for the Linear layers, then ``value_head`` and ``advantage_head``, or
``q_head``), so the weights the learner publishes load unchanged. Convolutional (nature,
minatar) torsos act with torch behind the same two methods (``TorchQ``); ``build_acting_q``
picks one. ``double_q_abs_td`` is the actors' |TD error|, their initial priorities.
"""

from __future__ import annotations

import math
import warnings
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


def double_q_abs_td(
    *,
    q_BA: np.ndarray,
    next_q_BA: np.ndarray,
    action_B: np.ndarray,
    return_B: np.ndarray,
    discount_B: np.ndarray,
    done_B: np.ndarray,
) -> np.ndarray:
    """|y - Q(s, a)| with y = G + (1 - done) * gamma^m * Q(s', argmax Q(s', .)), float32.

    The learner's target (``losses.td_targets``, double Q) with one network standing in for
    both the online and the target network, as an actor has no target network.
    """
    rows = np.arange(len(action_B))
    return abs_td(
        q_taken_B=q_BA[rows, action_B],
        next_v_B=next_q_BA[rows, next_q_BA.argmax(axis=1)],
        return_B=return_B,
        discount_B=discount_B,
        done_B=done_B,
    )


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

    Acting runs a TorchScript trace of the network, made once on the first call: it shares
    the module's parameters, so ``set_weights`` (an in-place copy) updates it. Measured on a
    2-core AMD EPYC for a batch of 16 Atari stacks under bf16: 3.2 ms against 7.7 ms for the
    eager module, and it holds the GIL for less of the forward pass, which lets a pipelined
    actor step envs alongside it. (A frozen trace is 2.6 ms but must be re-made, about 30 ms,
    on every weight change, and each re-made one leaked about 0.5 MB.)

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
        self._net.eval()
        self._traced: Any = None  # traced on the first call

    def set_weights(self, weights: dict[str, np.ndarray]) -> None:
        """Load a numpy state dict (``networks.get_weights``)."""
        from apex_dqn.algo.networks import set_weights

        set_weights(self._net, weights)  # in place: the trace sees the new weights

    def q_values(self, obs: np.ndarray) -> np.ndarray:
        """Q-values, float32, shape [N, A]."""
        import torch

        x = torch.as_tensor(obs)
        if self._traced is None:
            self._traced = self._trace(x)
        with torch.inference_mode():
            return self._traced(x).float().numpy()

    def _trace(self, example: Any) -> Any:
        import torch

        with (
            warnings.catch_warnings(),
            torch.no_grad(),
            # No weight cache: a cached bf16 copy of a weight would enter the trace as a
            # constant, and new weights would never reach it.
            torch.autocast("cpu", dtype=torch.bfloat16, enabled=self._bf16, cache_enabled=False),
        ):
            warnings.simplefilter("ignore")  # tracer notes on Python-level shape arithmetic
            return torch.jit.trace(self._net, example, check_trace=False)


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
