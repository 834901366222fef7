"""Golden tests for the double-Q TD targets and the importance-weighted Huber loss."""

from __future__ import annotations

import torch

from apex_dqn.algo.losses import dqn_loss, td_targets


def _t(values: list) -> torch.Tensor:
    return torch.tensor(values, dtype=torch.float32)


def test_golden_bellman_backup_expectation() -> None:
    # Two outcomes: rewards 2 and 4, next values 1 and 3, gamma 0.9, probabilities 0.7 and 0.3.
    next_q_BA = _t([[1.0], [3.0]])
    target_B = td_targets(
        return_B=_t([2.0, 4.0]),
        discount_B=_t([0.9, 0.9]),
        done_B=torch.tensor([False, False]),
        next_q_online_BA=next_q_BA,
        next_q_target_BA=next_q_BA,
    )
    backup = (_t([0.7, 0.3]) * target_B).sum()
    # 0.7 * (2 + 0.9 * 1) + 0.3 * (4 + 0.9 * 3) = 4.04
    torch.testing.assert_close(backup, torch.tensor(4.04))


def test_golden_td_error() -> None:
    next_q_BA = _t([[3.0]])
    target_B = td_targets(
        return_B=_t([1.0]),
        discount_B=_t([0.9]),
        done_B=torch.tensor([False]),
        next_q_online_BA=next_q_BA,
        next_q_target_BA=next_q_BA,
    )
    _, td_error_B = dqn_loss(
        q_BA=_t([[2.0]]), action_B=torch.tensor([0]), target_B=target_B, weight_B=_t([1.0])
    )
    # 1 + 0.9 * 3 - 2 = 1.7
    torch.testing.assert_close(td_error_B, _t([1.7]))


def test_double_q_uses_online_argmax_evaluated_by_target() -> None:
    kwargs = {
        "return_B": _t([0.0]),
        "discount_B": _t([1.0]),
        "done_B": torch.tensor([False]),
        "next_q_online_BA": _t([[5.0, 1.0, 0.0]]),
        "next_q_target_BA": _t([[2.0, 10.0, 3.0]]),
    }
    # Online argmax is action 0, whose target value is 2; plain max over the target is 10.
    torch.testing.assert_close(td_targets(**kwargs, double_q=True), _t([2.0]))
    torch.testing.assert_close(td_targets(**kwargs, double_q=False), _t([10.0]))


def test_done_masks_bootstrap() -> None:
    target_B = td_targets(
        return_B=_t([1.0, 1.0]),
        discount_B=_t([0.5, 0.5]),
        done_B=torch.tensor([True, False]),
        next_q_online_BA=_t([[4.0], [4.0]]),
        next_q_target_BA=_t([[4.0], [4.0]]),
    )
    torch.testing.assert_close(target_B, _t([1.0, 3.0]))


def test_targets_carry_no_gradient() -> None:
    next_q_BA = _t([[1.0, 2.0]]).requires_grad_()
    target_B = td_targets(
        return_B=_t([0.0]),
        discount_B=_t([0.9]),
        done_B=torch.tensor([False]),
        next_q_online_BA=next_q_BA,
        next_q_target_BA=next_q_BA,
    )
    assert not target_B.requires_grad


def test_huber_quadratic_below_delta_linear_above() -> None:
    q_BA = _t([[0.0], [0.0]])
    kwargs = {"q_BA": q_BA, "action_B": torch.tensor([0, 0]), "weight_B": _t([1.0, 1.0])}
    small, _ = dqn_loss(target_B=_t([0.5, 0.5]), **kwargs)
    big, _ = dqn_loss(target_B=_t([3.0, 3.0]), **kwargs)
    big_delta2, _ = dqn_loss(target_B=_t([3.0, 3.0]), huber_delta=2.0, **kwargs)
    torch.testing.assert_close(small, torch.tensor(0.125))  # 0.5 * 0.5^2
    torch.testing.assert_close(big, torch.tensor(2.5))  # 1 * (3 - 0.5)
    torch.testing.assert_close(big_delta2, torch.tensor(4.0))  # 2 * (3 - 1)


def test_importance_weights_scale_loss_and_action_selects_q() -> None:
    q_BA = _t([[0.0, 1.0], [2.0, 0.0]])
    target_B = _t([1.5, 2.5])  # errors 0.5 on Q(s0, a1) and 0.5 on Q(s1, a0)
    action_B = torch.tensor([1, 0])
    plain, td_B = dqn_loss(q_BA=q_BA, action_B=action_B, target_B=target_B, weight_B=_t([1, 1]))
    weighted, _ = dqn_loss(q_BA=q_BA, action_B=action_B, target_B=target_B, weight_B=_t([3, 0]))
    torch.testing.assert_close(td_B, _t([0.5, 0.5]))
    torch.testing.assert_close(plain, torch.tensor(0.125))
    # mean(3 * 0.125, 0 * 0.125)
    torch.testing.assert_close(weighted, torch.tensor(0.1875))


def test_gradient_flows_only_through_q() -> None:
    q_BA = _t([[1.0, 2.0], [0.5, -1.0]]).requires_grad_()
    target_B = _t([2.0, 0.0]).requires_grad_()
    weight_B = _t([1.0, 2.0]).requires_grad_()
    loss, td_B = dqn_loss(
        q_BA=q_BA, action_B=torch.tensor([0, 1]), target_B=target_B, weight_B=weight_B
    )
    loss.backward()
    assert not td_B.requires_grad
    assert target_B.grad is None
    assert weight_B.grad is None
    # d/dq mean(w * 0.5 (q - y)^2) = w * (q - y) / B, only at the taken actions
    torch.testing.assert_close(q_BA.grad, _t([[-0.5, 0.0], [0.0, -1.0]]))
