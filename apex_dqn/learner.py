"""The Learner: Q-network, target network, optimizer and device; one update per ``step``.

``Learner.step`` takes a prioritized sample (transitions plus importance weights), applies one
double-DQN update with n-step targets and an importance-weighted Huber loss, and returns the
metrics together with the new priorities |TD error| for the replay. It knows nothing of Ray or of
where batches come from; the runtime feeds it and ships its priorities and weights.
"""

from __future__ import annotations

import copy
import math
from dataclasses import dataclass

import numpy as np
import torch

from apex_dqn.config import AlgoConfig, LearnerConfig, NetworkConfig, ReplayConfig
from apex_dqn.exploration import actor_correction_weights
from apex_dqn.losses import dqn_loss, td_targets
from apex_dqn.networks import build_q_network, get_weights
from apex_dqn.types import TransitionBatch


def resolve_device(name: str) -> torch.device:
    """``auto`` is CUDA when torch sees a GPU (not merely CUDA_VISIBLE_DEVICES), else CPU."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise RuntimeError(f"learner.device={name!r} but torch sees no CUDA device here")
    return torch.device(name)


@dataclass
class LearnerMetrics:
    """Scalars of one update."""

    loss: float
    mean_abs_td: float
    mean_q: float
    grad_norm: float
    beta: float
    skipped: bool


class Learner:
    """Double DQN with a dueling head and n-step targets (see module docstring).

    Args:
        obs_shape: shape of one observation.
        num_actions: size of the action space.
        network: Q-network architecture.
        algo: gamma, double Q (n-step returns arrive already summed in the batch).
        learner: optimizer, target period, device, actor correction.
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
        self._actor_epsilons = actor_epsilons
        with torch.random.fork_rng(devices=[]):  # seeded init, global RNG untouched
            torch.manual_seed(seed)
            self.online = build_q_network(network, obs_shape=obs_shape, num_actions=num_actions)
        self.online.to(self.device)
        self.target = copy.deepcopy(self.online).requires_grad_(False)
        self.optimizer = torch.optim.Adam(
            self.online.parameters(), lr=learner.lr, eps=learner.adam_eps
        )
        self.learner_steps = 0
        self.skipped_updates = 0

    def beta(self) -> float:
        """Importance-sampling exponent, annealed linearly from beta_start to beta_end."""
        frac = min(1.0, self.learner_steps / self._replay.beta_anneal_steps)
        return self._replay.beta_start + frac * (self._replay.beta_end - self._replay.beta_start)

    def _tensor(self, array: np.ndarray, dtype: torch.dtype | None = None) -> torch.Tensor:
        return torch.as_tensor(array, dtype=dtype, device=self.device)

    def step(
        self, batch: TransitionBatch, weights_B: np.ndarray
    ) -> tuple[LearnerMetrics, np.ndarray]:
        """One gradient update on ``batch`` weighted by ``weights_B``; returns new priorities.

        A non-finite loss or gradient norm skips the update (counted in ``skipped_updates``)
        rather than corrupting the network; the old |TD error| is still returned.
        """
        if self.cfg.actor_correction and self._actor_epsilons is not None:
            weights_B = weights_B * actor_correction_weights(
                batch.greedy_B,
                batch.epsilon_B,
                all_epsilons=self._actor_epsilons,
                num_actions=self._num_actions,
            )
        obs = self._tensor(batch.obs_B)
        next_obs = self._tensor(batch.next_obs_B)
        q_all = self.online(torch.cat([obs, next_obs]))
        q_BA, next_q_online_BA = q_all[: len(batch)], q_all[len(batch) :]
        with torch.no_grad():
            next_q_target_BA = self.target(next_obs)
        target_B = td_targets(
            return_B=self._tensor(batch.return_B),
            discount_B=self._tensor(batch.discount_B),
            done_B=self._tensor(batch.done_B),
            next_q_online_BA=next_q_online_BA.detach(),
            next_q_target_BA=next_q_target_BA,
            double_q=self._algo.double_q,
        )
        loss, td_B = dqn_loss(
            q_BA=q_BA,
            action_B=self._tensor(batch.action_B, torch.int64),
            target_B=target_B,
            weight_B=self._tensor(weights_B, torch.float32),
            huber_delta=self.cfg.huber_delta,
        )
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        max_norm = self.cfg.grad_clip if self.cfg.grad_clip > 0 else math.inf
        grad_norm = float(torch.nn.utils.clip_grad_norm_(self.online.parameters(), max_norm))
        loss_value = float(loss.detach())
        skipped = not (math.isfinite(loss_value) and math.isfinite(grad_norm))
        if skipped:
            self.skipped_updates += 1
            self.optimizer.zero_grad(set_to_none=True)
        else:
            self.optimizer.step()
        beta = self.beta()
        self.learner_steps += 1
        if self.learner_steps % self.cfg.target_update_period == 0:
            self.target.load_state_dict(self.online.state_dict())
        metrics = LearnerMetrics(
            loss=loss_value,
            mean_abs_td=float(td_B.abs().mean()),
            mean_q=float(q_BA.detach().mean()),
            grad_norm=grad_norm,
            beta=beta,
            skipped=skipped,
        )
        return metrics, td_B.abs().cpu().numpy()

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
