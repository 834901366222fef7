"""A numpy forward pass of the MLP Q-network, for actors and the evaluator.

Acting needs one forward pass of a small network on a handful of observations. numpy does that
faster than torch at these sizes, and it spares actor and evaluator processes the import of
torch (about a second of CPU each at start-up, which on a small machine delays the first
transitions). Keys and shapes are those of ``networks.QNetwork``'s state dict (``torso.<i>``
for the Linear layers, then ``value_head`` and ``advantage_head``, or ``q_head``), so the
weights the learner publishes load unchanged. Convolutional (nature, minatar) torsos act with
torch behind the same two methods (``acting.TorchQ``).
"""

from __future__ import annotations

import math

import numpy as np


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
