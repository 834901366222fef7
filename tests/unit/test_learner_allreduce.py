"""Several learners averaging gradients with torch.distributed (gloo, two CPU processes)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp

from apex_dqn.config import AlgoConfig, LearnerConfig, NetworkConfig, ReplayConfig
from apex_dqn.learner import Learner
from apex_dqn.networks import weights_digest
from apex_dqn.types import TransitionBatch
from tests.unit.test_learner import _batch, _learner

STEPS = 25


def _rank_main(rank: int, world: int, store: str, out: str) -> None:
    dist.init_process_group("gloo", init_method=f"file://{store}", rank=rank, world_size=world)
    torch.set_num_threads(1)
    try:
        learner = Learner(
            obs_shape=(4,),
            num_actions=2,
            network=NetworkConfig(hidden_sizes=[32, 32]),
            algo=AlgoConfig(),
            learner=LearnerConfig(device="cpu", lr=1e-2),
            replay=ReplayConfig(beta_anneal_steps=100),
            actor_epsilons=np.array([0.4, 0.1]),
            seed=0,  # the same initial weights as _learner()
            process_group=dist.group.WORLD,
        )
        batch = _batch(seed=rank)  # every learner samples its own batch
        weights = np.linspace(0.5, 1.0, len(batch)).astype(np.float32)
        for _ in range(STEPS):
            learner.step(batch, weights)
        torch.save(
            {
                "digest": weights_digest(learner.get_weights()),
                "online": learner.online.state_dict(),
            },
            f"{out}/rank{rank}.pt",
        )
    finally:
        dist.destroy_process_group()


@pytest.mark.slow
def test_two_learners_stay_identical_and_act_as_one_with_twice_the_batch(tmp_path):
    mp.start_processes(
        _rank_main,
        args=(2, str(tmp_path / "store"), str(tmp_path)),
        nprocs=2,
        join=True,
        start_method="spawn",
    )
    ranks = [torch.load(tmp_path / f"rank{r}.pt", weights_only=True) for r in range(2)]
    assert ranks[0]["digest"] == ranks[1]["digest"]  # identical to the last bit
    # One learner on both batches at once (its loss is the mean over 2B rows) takes the same
    # steps: the effective batch of two learners is twice the per-learner batch.
    single = _learner(lr=1e-2)
    both = TransitionBatch.concatenate([_batch(seed=0), _batch(seed=1)])
    weights = np.tile(np.linspace(0.5, 1.0, len(both) // 2).astype(np.float32), 2)
    for _ in range(STEPS):
        single.step(both, weights)
    for key, value in single.online.state_dict().items():
        torch.testing.assert_close(ranks[0]["online"][key], value, rtol=1e-4, atol=1e-5)
    # And not the same as a single learner on one batch alone.
    alone = _learner(lr=1e-2)
    for _ in range(STEPS):
        alone.step(_batch(seed=0), weights[: len(both) // 2])
    diffs = [
        (ranks[0]["online"][k] - v).abs().max().item() for k, v in alone.online.state_dict().items()
    ]
    assert max(diffs) > 1e-3
