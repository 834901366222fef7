"""A learner's membership of a group of learners (``learner.num_learners`` > 1) that share one
network through torch.distributed (gloo on CPU, NCCL on GPUs).

Before every optimizer step the gradients are averaged over the group with one all-reduce, so
every learner takes the same step and holds the same weights; the effective batch is
K x ``learner.batch_size``. ``round`` lets a learner take part in an update without a batch of
its own (its replay did not answer in time): it adds zeros to the sum, and the sum is divided by
the number of learners that brought one.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.distributed as dist

from apex_dqn.algo.learner import Learner, StagedBatch, StepResult


class LearnerGroup:
    """``learner`` as one member of the torch.distributed process group ``group``."""

    def __init__(self, learner: Learner, group: Any) -> None:
        self.learner = learner
        self.group = group

    def broadcast_from(self, src: int = 0) -> None:
        """Copy learner ``src``'s networks to every learner of the group (at group start, so
        that all begin from identical weights whatever their seeds)."""
        learner = self.learner
        for tensor in [
            *learner.online.state_dict().values(),
            *learner.target.state_dict().values(),
        ]:
            dist.broadcast(tensor, src=src, group=self.group)

    def round(self, staged: StagedBatch | None, stop: bool) -> tuple[StepResult | None, bool]:
        """One collective round; every learner of the group calls it.

        The learners first agree (one small all-reduce) on how many of them bring a batch and
        whether any wants to stop. If any brings one, all take the same update
        (``Learner.step`` with the gradients averaged over the batches brought). Returns this
        learner's result (None when it brought no batch) and whether any learner asked to stop
        after this round, so that all end a call at the same round.
        """
        vote = torch.tensor([float(staged is not None), float(stop)], device=self.learner.device)
        dist.all_reduce(vote, group=self.group)
        contributors, stops = (int(x) for x in vote.tolist())
        if contributors == 0:
            return None, stops > 0
        result = self.learner.step(staged, lambda: self._average(contributors))
        return result, stops > 0

    def _average(self, contributors: int) -> None:
        """Sum the gradients over the group with one all-reduce of all of them flattened (a
        learner without a batch adds zeros) and divide by ``contributors``. Every learner's
        loss is a mean over its own batch, so the result is the gradient of the mean over all
        contributed batches."""
        params = list(self.learner.online.parameters())
        flat = torch.cat(
            [p.grad.reshape(-1) if p.grad is not None else p.new_zeros(p.numel()) for p in params]
        )
        dist.all_reduce(flat, group=self.group)
        flat /= contributors
        offset = 0
        for p in params:
            size = p.numel()
            if p.grad is None:
                p.grad = torch.empty_like(p)  # the parameter's layout (channels-last or not)
            p.grad.copy_(flat[offset : offset + size].view(p.shape))
            offset += size
