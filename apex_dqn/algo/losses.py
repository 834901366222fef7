"""The DQN temporal-difference loss as pure functions of tensors.

This module owns the n-step (double) Q-learning target and the importance-weighted Huber loss
(Mnih et al., 2015; van Hasselt et al., 2016; Schaul et al., 2016). Targets carry no gradient;
the loss returns the per-sample TD errors too, which the learner turns into new priorities.
No networks or optimizers here: callers pass Q-values already computed.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor


def td_targets(
    *,
    return_B: Tensor,
    discount_B: Tensor,
    done_B: Tensor,
    next_q_online_BA: Tensor,
    next_q_target_BA: Tensor,
    double_q: bool = True,
) -> Tensor:
    """N-step Q-learning targets y = G + (1 - done) * gamma^m * Q_target(s', a*).

    Args:
        return_B: n-step discounted returns G, shape [B].
        discount_B: bootstrap discounts gamma^m, shape [B].
        done_B: True (or 1) where the episode terminated: no bootstrap, shape [B].
        next_q_online_BA: online-network Q-values at s', shape [B, A]; used for a* when
            ``double_q``.
        next_q_target_BA: target-network Q-values at s', shape [B, A].
        double_q: if True, a* = argmax_a Q_online(s', a) (double DQN); if False,
            a* = argmax_a Q_target(s', a), i.e. the bootstrap value is max_a Q_target(s', a).

    Returns:
        Targets, shape [B], detached from the graph.
    """
    with torch.no_grad():
        if double_q:
            best_B = next_q_online_BA.argmax(dim=1)
            next_v_B = next_q_target_BA.gather(1, best_B.unsqueeze(1)).squeeze(1)
        else:
            next_v_B = next_q_target_BA.max(dim=1).values
        not_done_B = 1.0 - done_B.to(next_v_B.dtype)
        target_B = (
            return_B.to(next_v_B.dtype) + not_done_B * discount_B.to(next_v_B.dtype) * next_v_B
        )
    return target_B.detach()


def dqn_loss(
    *,
    q_BA: Tensor,
    action_B: Tensor,
    target_B: Tensor,
    weight_B: Tensor,
    huber_delta: float = 1.0,
) -> tuple[Tensor, Tensor]:
    """Importance-weighted Huber loss between Q(s, a) and fixed targets.

    Huber(x) = 0.5 * x^2 for |x| <= delta, delta * (|x| - 0.5 * delta) above, so gradients are
    clipped to magnitude delta for large TD errors.

    Args:
        q_BA: online-network Q-values at s, shape [B, A]; the only input gradients flow into.
        action_B: actions taken (integer), shape [B].
        target_B: TD targets, shape [B]; treated as constants.
        weight_B: importance-sampling weights, shape [B]; treated as constants.
        huber_delta: where the loss turns from quadratic to linear, > 0.

    Returns:
        (loss, td_error_B): the scalar mean(weight * huber(Q(s, a) - target)), and
        td_error_B = target - Q(s, a), shape [B], detached.
    """
    q_B = q_BA.gather(1, action_B.long().unsqueeze(1)).squeeze(1)
    target_B = target_B.detach().to(q_B.dtype)
    huber_B = F.huber_loss(q_B, target_B, reduction="none", delta=huber_delta)
    loss = (weight_B.detach().to(q_B.dtype) * huber_B).mean()
    return loss, (target_B - q_B).detach()
