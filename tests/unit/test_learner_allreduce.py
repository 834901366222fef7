"""Several learners averaging gradients with torch.distributed (gloo, two CPU processes)."""

from __future__ import annotations

import socket

import numpy as np
import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp

from apex_dqn.algo.learner import Learner
from apex_dqn.algo.learner_group import LearnerGroup
from apex_dqn.algo.networks import weights_digest
from apex_dqn.config import AlgoConfig, LearnerConfig, NetworkConfig, ReplayConfig
from apex_dqn.core.types import TransitionBatch
from tests.unit.learner_helpers import cartpole_batch, small_learner

STEPS = 25


def _free_address() -> str:
    """A tcp:// rendezvous address on a free local port."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return f"tcp://127.0.0.1:{sock.getsockname()[1]}"


def _run_two(main, tmp_path, prefix: str) -> list[dict]:
    """Run ``main(rank, 2, address, out)`` in two spawned processes; load what each saved."""
    mp.start_processes(
        main, args=(2, _free_address(), str(tmp_path)), nprocs=2, join=True, start_method="spawn"
    )
    return [torch.load(tmp_path / f"{prefix}{r}.pt", weights_only=True) for r in range(2)]


def _leave() -> None:
    """Leave the group together: the last rank to leave must not find a peer's side closed."""
    dist.barrier()
    dist.destroy_process_group()


def _rank_main(rank: int, world: int, store: str, out: str) -> None:
    dist.init_process_group("gloo", init_method=store, rank=rank, world_size=world)
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
            seed=0,  # the same initial weights as small_learner()
        )
        group = LearnerGroup(learner, dist.group.WORLD)
        batch = cartpole_batch(seed=rank)  # every learner samples its own batch
        weights = np.linspace(0.5, 1.0, len(batch)).astype(np.float32)
        for _ in range(STEPS):
            result, stop = group.round(learner.stage(batch, weights), stop=False)
            assert result is not None and not stop
        torch.save(
            {
                "digest": weights_digest(learner.get_weights()),
                "online": learner.online.state_dict(),
            },
            f"{out}/rank{rank}.pt",
        )
    finally:
        _leave()


@pytest.mark.slow
def test_two_learners_stay_identical_and_act_as_one_with_twice_the_batch(tmp_path):
    ranks = _run_two(_rank_main, tmp_path, "rank")
    assert ranks[0]["digest"] == ranks[1]["digest"]  # identical to the last bit
    # One learner on both batches at once (its loss is the mean over 2B rows) takes the same
    # steps: the effective batch of two learners is twice the per-learner batch.
    single = small_learner(lr=1e-2)
    both = TransitionBatch.concatenate([cartpole_batch(seed=0), cartpole_batch(seed=1)])
    weights = np.tile(np.linspace(0.5, 1.0, len(both) // 2).astype(np.float32), 2)
    for _ in range(STEPS):
        single.step(single.stage(both, weights))
    for key, value in single.online.state_dict().items():
        torch.testing.assert_close(ranks[0]["online"][key], value, rtol=1e-4, atol=1e-5)
    # And not the same as a single learner on one batch alone.
    alone = small_learner(lr=1e-2)
    for _ in range(STEPS):
        alone.step(alone.stage(cartpole_batch(seed=0), weights[: len(both) // 2]))
    diffs = [
        (ranks[0]["online"][k] - v).abs().max().item() for k, v in alone.online.state_dict().items()
    ]
    assert max(diffs) > 1e-3


def _group_main(rank: int, world: int, store: str, out: str) -> None:
    """Rounds of ``LearnerGroup.round`` where learner 1 brings no batch every third round and
    learner 0 asks to stop at round 10."""
    dist.init_process_group("gloo", init_method=store, rank=rank, world_size=world)
    torch.set_num_threads(1)
    try:
        learner = small_learner(lr=1e-2)
        if rank == 1:  # different starting weights: broadcast_from makes them rank 0's
            with torch.no_grad():
                for p in learner.online.parameters():
                    p.add_(1.0)
        group = LearnerGroup(learner, dist.group.WORLD)
        group.broadcast_from(0)
        batch = cartpole_batch(seed=rank)
        weights = np.linspace(0.5, 1.0, len(batch)).astype(np.float32)
        stops, priorities = [], []
        for step in range(12):
            brings = not (rank == 1 and step % 3 == 0)
            staged = learner.stage(batch, weights) if brings else None
            result, stop = group.round(staged, stop=rank == 0 and step == 9)
            stops.append(stop)
            priorities.append(result is not None)
        torch.save(
            {
                "online": learner.online.state_dict(),
                "steps": learner.learner_steps,
                "stops": stops,
                "had_priorities": priorities,
            },
            f"{out}/group{rank}.pt",
        )
    finally:
        _leave()


@pytest.mark.slow
def test_group_rounds_average_over_the_learners_that_bring_a_batch(tmp_path):
    ranks = _run_two(_group_main, tmp_path, "group")
    for key, value in ranks[0]["online"].items():
        assert torch.equal(value, ranks[1]["online"][key]), key  # identical to the last bit
    assert ranks[0]["steps"] == ranks[1]["steps"] == 12
    # The stop asked for by one learner reaches both in the same round.
    assert ranks[0]["stops"] == ranks[1]["stops"] == [False] * 9 + [True] + [False] * 2
    assert ranks[1]["had_priorities"] == [step % 3 != 0 for step in range(12)]
    # The reference: one learner stepping on both batches, or on learner 0's alone when
    # learner 1 brought none.
    single = small_learner(lr=1e-2)
    weights = np.linspace(0.5, 1.0, len(cartpole_batch(seed=0))).astype(np.float32)
    both = TransitionBatch.concatenate([cartpole_batch(seed=0), cartpole_batch(seed=1)])
    for step in range(12):
        if step % 3 == 0:
            single.step(single.stage(cartpole_batch(seed=0), weights))
        else:
            single.step(single.stage(both, np.tile(weights, 2)))
    for key, value in single.online.state_dict().items():
        torch.testing.assert_close(ranks[0]["online"][key], value, rtol=1e-4, atol=1e-5)
