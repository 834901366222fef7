"""The Learner: Q-network, target network, optimizer and device; one update per ``step``.

``Learner.step`` takes a prioritized sample (transitions plus importance weights), applies one
double-DQN update with n-step targets and an importance-weighted Huber loss, and returns the
metrics together with the new priorities |TD error| for the replay. It knows nothing of Ray or of
where batches come from; the runtime feeds it and ships its priorities and weights.
"""

from __future__ import annotations

import copy
import importlib
import math
import sys
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from apex_dqn.algo.exploration import BehaviourMixture
from apex_dqn.algo.losses import dqn_loss, td_targets
from apex_dqn.algo.networks import build_q_network, cpu_has_native_bf16, get_weights
from apex_dqn.config import AlgoConfig, LearnerConfig, NetworkConfig, ReplayConfig
from apex_dqn.core.types import TransitionBatch

UPDATE_RATIO_EVERY = 16
_TORCH_DTYPES = {
    np.dtype(np.uint8): torch.uint8,
    np.dtype(np.float32): torch.float32,
    np.dtype(np.int64): torch.int64,
    np.dtype(np.bool_): torch.bool,
}


def resolve_amp(amp: bool | str, device: torch.device) -> bool:
    """Whether to autocast to bf16: ``auto`` is on for a CPU with native bf16 instructions
    (AVX512-BF16, AMX), where this project's networks ran their updates 1.8x faster, and off
    elsewhere (emulated bf16 is slower than float32; on CUDA these networks gain nothing)."""
    if amp != "auto":
        return bool(amp)
    return device.type == "cpu" and cpu_has_native_bf16()


def resolve_device(name: str) -> torch.device:
    """``auto`` is CUDA when torch sees a GPU (not merely CUDA_VISIBLE_DEVICES), else CPU."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise RuntimeError(f"learner.device={name!r} but torch sees no CUDA device here")
    return torch.device(name)


def dynamo_free_adam(
    params: Any, *, lr: float, eps: float
) -> tuple[torch.optim.Adam, Callable[[], None]]:
    """torch's fused Adam over ``params``, and its step, without importing TorchDynamo.

    torch.optim wraps ``step``, ``add_param_group``, ``zero_grad``, ``state_dict``, the
    functional Adam and more in code whose first call imports ``torch._dynamo``: 1.5 to 2 s of
    CPU, the largest part of a learner's start-up on two cores (``benchmarks/startup.py``).
    Outside of ``torch.compile`` those wrappers only switch gradients off and run the function
    they wrap, so the other wrappers are given the plain function as the disabled one they
    cache on first use, and the step returned runs the unwrapped ``step`` under ``no_grad``.
    Tests check that its steps are bit for bit those of ``optimizer.step``. Once
    ``torch._dynamo`` is loaded anyway (``learner.compile``), nothing is changed and the step
    is ``optimizer.step``.
    """
    if "torch._dynamo" in sys.modules:
        optimizer = torch.optim.Adam(params, lr=lr, eps=eps, fused=True)
        return optimizer, optimizer.step  # type: ignore[return-value]
    functional_adam = importlib.import_module("torch.optim.adam").adam
    wrappers: list[Any] = [
        getattr(torch.optim.Optimizer, name)
        for name in ("add_param_group", "zero_grad", "state_dict", "load_state_dict")
    ]
    wrappers += [cell.cell_contents for cell in functional_adam.__closure__ or ()]
    for wrapper in wrappers:
        fn = getattr(wrapper, "__wrapped__", None)
        if callable(wrapper) and fn is not None and not hasattr(fn, "__dynamo_disable"):
            fn.__dynamo_disable = fn  # what torch._disable_dynamo caches on its first call
    optimizer = torch.optim.Adam(params, lr=lr, eps=eps, fused=True)
    step: Any = type(optimizer).step
    while hasattr(step, "__wrapped__"):  # the profiler hook, then the no-grad switch
        step = step.__wrapped__

    def plain_step() -> None:
        with torch.no_grad():
            step(optimizer)

    return optimizer, plain_step


@dataclass
class LearnerMetrics:
    """Scalars of one update."""

    loss: float
    mean_abs_td: float
    mean_q: float
    max_q: float
    grad_norm: float
    beta: float
    skipped: bool
    update_ratio: float = math.nan


@dataclass
class StagedBatch:
    """A batch already on the learner's device (``Learner.stage``), ready for ``step_staged``.

    Attributes:
        obs_all: s_t of every row, then s_{t+m} of every row, shape [2B, *obs_shape].
        action: a_t (int64), [B].
        return_: n-step returns, [B].
        discount: gamma^m, [B].
        done: terminated within the m steps, [B].
        weight: importance weights (times the actor correction when on), [B].
        ready: on CUDA, the event recorded after the host-to-device copies (None on CPU).
    """

    obs_all: torch.Tensor
    action: torch.Tensor
    return_: torch.Tensor
    discount: torch.Tensor
    done: torch.Tensor
    weight: torch.Tensor
    ready: torch.cuda.Event | None = None

    def __len__(self) -> int:
        return int(self.action.shape[0])


class Learner:
    """Double DQN with a dueling head and n-step targets (see module docstring).

    On CUDA, ``stage`` copies a batch into pinned host memory and on to the GPU on a side
    stream, so a host thread can stage the next batches while ``step_staged`` runs the current
    one; ``step`` does both in turn.

    Args:
        obs_shape: shape of one observation.
        num_actions: size of the action space.
        network: Q-network architecture.
        algo: gamma, double Q (n-step returns arrive already summed in the batch).
        learner: optimizer, target period, device, actor correction, amp, compile.
        replay: the beta schedule for importance weights.
        actor_epsilons: every actor's epsilon, needed only for ``learner.actor_correction``.
        seed: seeds the network initialisation.
    """

    def __init__(
        self,
        *,
        obs_shape: tuple[int, ...],
        num_actions: int,
        network: NetworkConfig,
        algo: AlgoConfig,
        learner: LearnerConfig,
        replay: ReplayConfig,
        actor_epsilons: np.ndarray | None = None,
        seed: int = 0,
    ) -> None:
        self.device = resolve_device(learner.device)
        self.cfg = learner
        self._algo = algo
        self._replay = replay
        self._num_actions = num_actions
        # The actors' behaviour mixture, for learner.actor_correction.
        self._mixture_lock = threading.Lock()
        self._mixture = (
            BehaviourMixture(actor_epsilons, num_actions=num_actions)
            if actor_epsilons is not None
            else None
        )
        with torch.random.fork_rng(devices=[]):  # seeded init, global RNG untouched
            torch.manual_seed(seed)
            self.online = build_q_network(network, obs_shape=obs_shape, num_actions=num_actions)
        self.online.to(self.device)
        self.target = copy.deepcopy(self.online).requires_grad_(False)
        # fused: one kernel over all parameters (on this CPU a third of the for-loop Adam's
        # time, which for MinAtar's small network was 7% of an update).
        self._adam_step: Callable[[], Any]
        if learner.compile:
            self.optimizer = torch.optim.Adam(
                self.online.parameters(), lr=learner.lr, eps=learner.adam_eps, fused=True
            )
            self._adam_step = self.optimizer.step
        else:
            self.optimizer, self._adam_step = dynamo_free_adam(
                self.online.parameters(), lr=learner.lr, eps=learner.adam_eps
            )
        self.amp = resolve_amp(learner.amp, self.device)
        # ||step|| / ||params|| of the latest measured update (measured every
        # UPDATE_RATIO_EVERY updates): how far Adam actually moves the network.
        self.update_ratio = math.nan
        # Compiled callables share their parameters with self.online / self.target, so loading
        # a state dict into those updates what the compiled code runs.
        self._online_fn = torch.compile(self.online) if learner.compile else self.online
        self._target_fn = torch.compile(self.target) if learner.compile else self.target
        cuda = self.device.type == "cuda"
        if cuda:
            # TF32 tensor cores for float32 matmuls (convolutions already use them by default).
            torch.set_float32_matmul_precision("high")
        self._pin = cuda and learner.pin_memory
        self._copy_stream = torch.cuda.Stream(self.device) if self._pin else None
        self.learner_steps = 0
        self.skipped_updates = 0

    @property
    def stages_async(self) -> bool:
        """Whether ``stage`` copies to a device (CUDA with pinned memory), so that staging in a
        helper thread overlaps with updates; on CPU it only wraps arrays."""
        return self._pin

    def beta(self) -> float:
        """Importance-sampling exponent, annealed linearly from beta_start to beta_end."""
        frac = min(1.0, self.learner_steps / self._replay.beta_anneal_steps)
        return self._replay.beta_start + frac * (self._replay.beta_end - self._replay.beta_start)

    def stage(self, batch: TransitionBatch, weights_B: np.ndarray) -> StagedBatch:
        """Move ``batch`` and its importance weights to the device (see the class docstring).

        Safe to call from one helper thread while another thread runs ``step_staged``.
        """
        if self.cfg.actor_correction and self._mixture is not None:
            with self._mixture_lock:  # stage() may run in two staging threads on CUDA
                self._mixture.observe(batch.epsilon_B)
                correction_B = self._mixture.weights(
                    batch.epsilon_B, batch.steps_B, batch.later_greedy_B
                )
            weights_B = weights_B * correction_B
        stacks = (batch.obs_B, batch.next_obs_B)
        host: dict[str, np.ndarray] = {
            "action": np.asarray(batch.action_B, dtype=np.int64),
            "return_": np.asarray(batch.return_B, dtype=np.float32),
            "discount": np.asarray(batch.discount_B, dtype=np.float32),
            "done": np.asarray(batch.done_B, dtype=bool),
            "weight": np.asarray(weights_B, dtype=np.float32),
        }
        if not self._pin:
            tensors = {k: torch.as_tensor(v, device=self.device) for k, v in host.items()}
            obs_all = torch.as_tensor(np.concatenate(stacks), device=self.device)
            return StagedBatch(obs_all=obs_all, **tensors)  # type: ignore[arg-type]
        assert self._copy_stream is not None
        # Pinned blocks come from torch's caching host allocator (no cudaHostAlloc per batch
        # once warm). The two stacks are copied straight into the halves of one pinned block:
        # each byte is copied once on the host, which is what bounds this path (measured on
        # an H100: batch 512 of Atari stacks is 29 MB).
        num = len(batch)
        obs_host = torch.empty(
            (2 * num, *batch.obs_B.shape[1:]),
            dtype=_TORCH_DTYPES[batch.obs_B.dtype],
            pin_memory=True,
        )
        obs_view = obs_host.numpy()
        obs_view[:num] = batch.obs_B
        obs_view[num:] = batch.next_obs_B
        tensors = {}
        with torch.cuda.stream(self._copy_stream):
            tensors["obs_all"] = obs_host.to(self.device, non_blocking=True)
            for name, array in host.items():
                pinned = torch.empty(array.shape, dtype=_TORCH_DTYPES[array.dtype], pin_memory=True)
                pinned.numpy()[...] = array
                tensors[name] = pinned.to(self.device, non_blocking=True)
            ready = torch.cuda.Event()
            ready.record(self._copy_stream)
        return StagedBatch(**tensors, ready=ready)  # type: ignore[arg-type]

    def step(
        self, batch: TransitionBatch, weights_B: np.ndarray
    ) -> tuple[LearnerMetrics, np.ndarray]:
        """One gradient update on ``batch`` weighted by ``weights_B``; returns new priorities."""
        return self.step_staged(self.stage(batch, weights_B))

    def step_staged(self, staged: StagedBatch) -> tuple[LearnerMetrics, np.ndarray]:
        """One gradient update on a staged batch; returns the metrics and new priorities.

        A non-finite loss or gradient norm skips the update (counted in ``skipped_updates``)
        rather than corrupting the network; the old |TD error| is still returned. The host
        waits for the device once per update, for the scalars and priorities together.
        """
        metrics, priorities_B = self.update(staged)
        assert metrics is not None and priorities_B is not None
        return metrics, priorities_B

    def update(
        self, staged: StagedBatch | None, reduce_gradients: Callable[[], None] | None = None
    ) -> tuple[LearnerMetrics | None, np.ndarray | None]:
        """One update on ``staged``; None (in a learner group, ``learner_group``) takes the
        update with no gradient of its own. ``reduce_gradients`` runs between the backward pass
        and the clipping: a group averages the gradients over its learners there."""
        self.optimizer.zero_grad(set_to_none=True)
        host: np.ndarray | None = None
        if staged is not None:
            loss, abs_td_B, q_detached = self._backward(staged)
        if reduce_gradients is not None:
            reduce_gradients()
        max_norm = self.cfg.grad_clip if self.cfg.grad_clip > 0 else math.inf
        grad_norm = torch.nn.utils.clip_grad_norm_(self.online.parameters(), max_norm)
        if staged is not None:
            scalars = torch.stack(
                [
                    loss.detach().float(),
                    grad_norm.float(),
                    abs_td_B.mean(),
                    q_detached.mean(),
                    q_detached.max(),
                ]
            )
            host = torch.cat([scalars, abs_td_B]).cpu().numpy()  # the one wait per update
            loss_value, grad_value, mean_abs_td, mean_q, max_q = (float(x) for x in host[:5])
        else:
            grad_value = float(grad_norm)
            loss_value = mean_abs_td = mean_q = max_q = math.nan
        # In a group the averaged gradient, hence its norm, is the same on every learner, so
        # all skip together; a learner's own non-finite loss shows in that norm too.
        finite_loss = math.isfinite(loss_value) or staged is None
        skipped = not (finite_loss and math.isfinite(grad_value))
        if skipped:
            self.skipped_updates += 1
            self.optimizer.zero_grad(set_to_none=True)
        else:
            self._optimizer_step()
        beta = self.beta()
        self.learner_steps += 1
        # Every learner of a group updates its target at the same step from identical weights:
        # the same target network everywhere without sending it.
        self._update_target()
        if host is None:
            return None, None
        metrics = LearnerMetrics(
            loss=loss_value,
            mean_abs_td=mean_abs_td,
            mean_q=mean_q,
            max_q=max_q,
            grad_norm=grad_value,
            beta=beta,
            skipped=skipped,
            update_ratio=self.update_ratio,
        )
        return metrics, host[5:]

    def _optimizer_step(self) -> None:
        """Adam's step; every UPDATE_RATIO_EVERY updates also measure its relative size."""
        if self.learner_steps % UPDATE_RATIO_EVERY:
            self._adam_step()
            return
        with torch.no_grad():
            params = list(self.online.parameters())
            before = [p.detach().clone() for p in params]
            self._adam_step()
            step = torch.linalg.vector_norm(
                torch.stack(
                    [torch.linalg.vector_norm(p - b) for p, b in zip(params, before, strict=True)]
                )
            )
            size = torch.linalg.vector_norm(
                torch.stack([torch.linalg.vector_norm(b) for b in before])
            )
            self.update_ratio = float(step / size.clamp_min(1e-12))

    def _update_target(self) -> None:
        """Polyak averaging after every update (``target_update_tau`` > 0), else a hard copy
        every ``target_update_period`` updates."""
        tau = self.cfg.target_update_tau
        if tau > 0:
            with torch.no_grad():
                target: list[torch.Tensor] = list(self.target.parameters())
                online: list[torch.Tensor] = list(self.online.parameters())
                torch._foreach_lerp_(target, online, tau)
        elif self.learner_steps % self.cfg.target_update_period == 0:
            self.target.load_state_dict(self.online.state_dict())

    def _backward(self, staged: StagedBatch) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Forward and backward passes on ``staged``: (loss, |TD error|, Q(s, .))."""
        if staged.ready is not None:
            stream = torch.cuda.current_stream(self.device)
            stream.wait_event(staged.ready)
            for tensor in (
                staged.obs_all,
                staged.action,
                staged.return_,
                staged.discount,
                staged.done,
                staged.weight,
            ):
                tensor.record_stream(stream)  # allocated on the copy stream, used on this one
        size = len(staged)
        with torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=self.amp):
            q_all = self._online_fn(staged.obs_all).float()
            with torch.no_grad():
                next_q_target_BA = self._target_fn(staged.obs_all[size:]).float()
        q_BA, next_q_online_BA = q_all[:size], q_all[size:]
        target_B = td_targets(
            return_B=staged.return_,
            discount_B=staged.discount,
            done_B=staged.done,
            next_q_online_BA=next_q_online_BA.detach(),
            next_q_target_BA=next_q_target_BA,
            double_q=self._algo.double_q,
        )
        loss, td_B = dqn_loss(
            q_BA=q_BA,
            action_B=staged.action,
            target_B=target_B,
            weight_B=staged.weight,
            huber_delta=self.cfg.huber_delta,
        )
        loss.backward()
        return loss, td_B.detach().abs().float(), q_BA.detach()

    def get_weights(self) -> dict[str, np.ndarray]:
        """The online network's weights as CPU numpy arrays (what actors load)."""
        return get_weights(self.online)

    def state_dict(self) -> dict:
        """Everything needed to continue learning: networks, optimizer, counters."""
        return {
            "online": self.online.state_dict(),
            "target": self.target.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "learner_steps": self.learner_steps,
            "skipped_updates": self.skipped_updates,
        }

    def load_state_dict(self, state: dict) -> None:
        """Restore what ``state_dict`` saved."""
        self.online.load_state_dict(state["online"])
        self.target.load_state_dict(state["target"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.learner_steps = int(state["learner_steps"])
        self.skipped_updates = int(state["skipped_updates"])
