"""The Learner: Q-network, target network, optimizer and device; one update per ``step``.

``Learner.stage`` puts a prioritized sample (transitions plus importance weights) on the device;
``Learner.step`` applies one double-DQN update on it, with n-step targets and an
importance-weighted Huber loss (``losses``), and returns the metrics together with the new
priorities |TD error| for the replay. It knows nothing of Ray or of where batches come from; the
roles feed it and ship its priorities and weights. The torch plumbing beneath (device, precision,
compilation, Adam's start-up, pinned copies) is in ``torch_compat``.
"""

from __future__ import annotations

import copy
import math
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import NamedTuple, overload

import numpy as np
import torch

from apex_dqn.algo.exploration import BehaviourMixture
from apex_dqn.algo.losses import dqn_loss, td_targets
from apex_dqn.algo.networks import build_q_network, dead_units, get_weights
from apex_dqn.algo.torch_compat import (
    HostToDevice,
    allow_tf32,
    fused_adam,
    maybe_compile,
    resolve_amp,
    resolve_channels_last,
    resolve_device,
)
from apex_dqn.config import AlgoConfig, LearnerConfig, NetworkConfig, ReplayConfig
from apex_dqn.core.types import TransitionBatch

UPDATE_RATIO_EVERY = 16
# Dead units are counted on the batch of every DEAD_UNITS_EVERY-th update: one more forward
# pass in that many updates.
DEAD_UNITS_EVERY = 250


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
    dead_units: float = math.nan
    dead_units_max: float = math.nan


class StepResult(NamedTuple):
    """What one update on a batch gives back (unpacks as ``metrics, priorities_B``).

    Attributes:
        metrics: the update's scalars.
        priorities_B: the new priorities |TD error| of the batch's rows, float32, [B].
    """

    metrics: LearnerMetrics
    priorities_B: np.ndarray


@dataclass
class StagedBatch:
    """A batch already on the learner's device (``Learner.stage``), ready for ``Learner.step``.

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

    def tensors(self) -> tuple[torch.Tensor, ...]:
        """Every tensor of the batch."""
        return (self.obs_all, self.action, self.return_, self.discount, self.done, self.weight)


class Learner:
    """Double DQN with a dueling head and n-step targets (see module docstring).

    A batch goes through two calls: ``stage`` puts it on the device, ``step`` learns from it.
    On CUDA ``stage`` copies through pinned memory on a side stream, so that a host thread can
    stage the next batches while ``step`` runs the current one (``stages_async``).

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
        torso = network.torso
        self.channels_last = resolve_channels_last(learner.channels_last, self.device, torso)
        if self.channels_last:  # before the optimizer: its state takes the parameters' layout
            self.online.to(memory_format=torch.channels_last)  # type: ignore[call-overload]
        self.target = copy.deepcopy(self.online).requires_grad_(False)
        self.optimizer, self._adam_step = fused_adam(
            self.online.parameters(), lr=learner.lr, eps=learner.adam_eps, compiled=learner.compile
        )
        self.amp = resolve_amp(learner.amp, self.device)
        # ||step|| / ||params|| of the latest measured update (measured every
        # UPDATE_RATIO_EVERY updates): how far Adam actually moves the network.
        self.update_ratio = math.nan
        # Fractions of hidden units that no observation of a batch activates, over all hidden
        # layers and in the worst one (``networks.dead_units``), every DEAD_UNITS_EVERY updates.
        self.dead_units = self.dead_units_max = math.nan
        self._online_fn = maybe_compile(self.online, learner.compile)
        self._target_fn = maybe_compile(self.target, learner.compile)
        allow_tf32(self.device)
        self._to_device = HostToDevice(
            self.device, pinned=self.device.type == "cuda" and learner.pin_memory
        )
        self.learner_steps = 0
        self.skipped_updates = 0

    @property
    def stages_async(self) -> bool:
        """Whether ``stage`` copies to a device (CUDA with pinned memory), so that staging in a
        helper thread overlaps with updates; on CPU it only wraps arrays."""
        return self._to_device.asynchronous

    def beta(self) -> float:
        """Importance-sampling exponent, annealed linearly from beta_start to beta_end."""
        frac = min(1.0, self.learner_steps / self._replay.beta_anneal_steps)
        return self._replay.beta_start + frac * (self._replay.beta_end - self._replay.beta_start)

    def stage(self, batch: TransitionBatch, weights_B: np.ndarray) -> StagedBatch:
        """Put ``batch`` and its importance weights on the device, for ``step``.

        With ``learner.actor_correction`` the weights are multiplied by the actors' behaviour
        correction here. Safe to call from helper threads while another thread runs ``step``.
        """
        if self.cfg.actor_correction and self._mixture is not None:
            epsilon_B, steps_B, later_B = batch.epsilon_B, batch.steps_B, batch.later_greedy_B
            if epsilon_B is None or steps_B is None or later_B is None:
                raise ValueError("learner.actor_correction needs batches with behaviour fields")
            with self._mixture_lock:  # stage() may run in two staging threads on CUDA
                # Rows restored from a snapshot made without the option hold zeros (steps 0,
                # weight 1): they say nothing of which actors the data comes from.
                self._mixture.observe(epsilon_B[steps_B > 0])
                correction_B = self._mixture.weights(epsilon_B, steps_B, later_B)
            weights_B = weights_B * correction_B
        tensors, ready = self._to_device.copy(
            {
                "obs_all": (batch.obs_B, batch.next_obs_B),
                "action": (np.asarray(batch.action_B, dtype=np.int64),),
                "return_": (np.asarray(batch.return_B, dtype=np.float32),),
                "discount": (np.asarray(batch.discount_B, dtype=np.float32),),
                "done": (np.asarray(batch.done_B, dtype=bool),),
                "weight": (np.asarray(weights_B, dtype=np.float32),),
            }
        )
        return StagedBatch(**tensors, ready=ready)

    @overload
    def step(
        self, staged: StagedBatch, reduce_gradients: Callable[[], None] | None = None
    ) -> StepResult: ...

    @overload
    def step(self, staged: None, reduce_gradients: Callable[[], None] | None = None) -> None: ...

    def step(
        self, staged: StagedBatch | None, reduce_gradients: Callable[[], None] | None = None
    ) -> StepResult | None:
        """One double-DQN update on ``staged``; returns its metrics and new priorities.

        A non-finite loss or gradient norm skips the update (counted in ``skipped_updates``)
        rather than corrupting the network; the |TD error| is still returned. The host waits
        for the device once per update, for the scalars and priorities together.

        In a learner group (``learner_group``), ``reduce_gradients`` runs between the backward
        pass and the clipping: the group averages the gradients over its learners there. A
        learner that brings no batch to the group's update passes ``staged=None``: it takes the
        same optimizer step from the averaged gradient and gets None back.
        """
        self.optimizer.zero_grad(set_to_none=True)
        if staged is not None:
            loss, abs_td_B, q_BA = self._backward(staged)
        if reduce_gradients is not None:
            reduce_gradients()
        max_norm = self.cfg.grad_clip if self.cfg.grad_clip > 0 else math.inf
        grad_norm = torch.nn.utils.clip_grad_norm_(self.online.parameters(), max_norm)
        host: np.ndarray | None = None
        if staged is not None:
            scalars = torch.stack(
                [loss.detach().float(), grad_norm.float(), abs_td_B.mean(), q_BA.mean(), q_BA.max()]
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
            return None
        if staged is not None and self.learner_steps % DEAD_UNITS_EVERY == 1:  # 1st, 251st...
            self._count_dead_units(staged)
        metrics = LearnerMetrics(
            loss=loss_value,
            mean_abs_td=mean_abs_td,
            mean_q=mean_q,
            max_q=max_q,
            grad_norm=grad_value,
            beta=beta,
            skipped=skipped,
            update_ratio=self.update_ratio,
            dead_units=self.dead_units,
            dead_units_max=self.dead_units_max,
        )
        return StepResult(metrics, host[5:])

    def _count_dead_units(self, staged: StagedBatch) -> None:
        """Dead hidden units of the online network on the batch's observations s_t."""
        obs = staged.obs_all[: len(staged)]
        with torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=self.amp):
            fractions = dead_units(self.online, obs)
        self.dead_units = fractions.pop("all")
        self.dead_units_max = max(fractions.values(), default=0.0)

    def _backward(self, staged: StagedBatch) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Forward and backward passes on ``staged``: (loss, |TD error|, Q(s, .)), the last
        two detached."""
        self._to_device.wait(staged.ready, staged.tensors())
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

    def _own_optimizer_state(self) -> None:
        """Copy Adam's loaded state, its moments into their parameter's memory layout.

        ``Optimizer.load_state_dict`` keeps the given tensors: the moments of a checkpoint of
        the other layout (``learner.channels_last``) stay in it, and the fused step, which
        walks parameter, gradient and moments as raw memory, then mixes up their elements; and
        two learners restored from one state dict would step each other's moments.
        """
        for param, slots in self.optimizer.state.items():
            for key, value in slots.items():
                if not isinstance(value, torch.Tensor):
                    continue
                if value.shape == param.shape:
                    slots[key] = torch.empty_like(param, dtype=value.dtype).copy_(value)
                else:
                    slots[key] = value.clone()

    def load_state_dict(self, state: dict) -> None:
        """Restore what ``state_dict`` saved."""
        self.online.load_state_dict(state["online"])
        self.target.load_state_dict(state["target"])
        self.optimizer.load_state_dict(state["optimizer"])
        self._own_optimizer_state()
        self.learner_steps = int(state["learner_steps"])
        self.skipped_updates = int(state["skipped_updates"])
