"""learner.num_threads: how many torch threads a learner process gets, and that its Ray host
applies them before it builds the learner."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import torch

from apex_dqn.algo.torch_compat import resolve_num_threads
from apex_dqn.config import AlgoConfig, LearnerConfig, NetworkConfig, ReplayConfig
from apex_dqn.roles.build import LearnerSpec
from apex_dqn.runtime import hosts

CPU, CUDA = torch.device("cpu"), torch.device("cuda")


def test_auto_gives_a_cpu_nature_learner_two_threads_and_others_their_cpus():
    assert resolve_num_threads("auto", 1.0, CPU, "nature", node_cpus=2) == 2
    assert resolve_num_threads("auto", 1.0, CPU, "nature", node_cpus=1) == 1  # no core to add
    assert resolve_num_threads("auto", 4.0, CPU, "nature", node_cpus=16) == 4
    assert resolve_num_threads("auto", 1.0, CPU, "minatar", node_cpus=2) == 1  # measured slower
    assert resolve_num_threads("auto", 1.0, CPU, "mlp", node_cpus=2) == 1
    assert resolve_num_threads("auto", 1.0, CUDA, "nature", node_cpus=16) == 1
    assert resolve_num_threads("auto", 0.5, CPU, "mlp", node_cpus=2) == 1
    assert resolve_num_threads("auto", 3.0, CPU, "minatar", node_cpus=2) == 3
    assert resolve_num_threads(3, 1.0, CPU, "minatar", node_cpus=2) == 3


@pytest.fixture
def restore_threads() -> Iterator[None]:
    before = torch.get_num_threads()
    yield
    torch.set_num_threads(before)


def _spec(torso: str, **learner: object) -> LearnerSpec:
    return LearnerSpec(
        obs_shape=(4, 84, 84),
        num_actions=6,
        network=NetworkConfig(torso=torso),
        algo=AlgoConfig(),
        learner=LearnerConfig(device="cpu", **learner),  # type: ignore[arg-type]
        replay=ReplayConfig(),
        actor_epsilons=(0.4,),
        seed=0,
    )


@pytest.mark.parametrize(
    ("torso", "learner", "threads"),
    [
        ("nature", {}, 2),
        ("minatar", {}, 1),
        ("minatar", {"num_cpus": 2.0}, 2),
        ("nature", {"num_threads": 3}, 3),
    ],
)
def test_the_learner_host_sets_the_resolved_threads(
    monkeypatch, restore_threads, torso, learner, threads
):
    monkeypatch.setattr(hosts, "usable_cpus", lambda: 8)
    torch.set_num_threads(5)
    hosts._learner_threads(_spec(torso, **learner))
    assert torch.get_num_threads() == threads
