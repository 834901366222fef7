"""learner.channels_last: the learner's networks in the NHWC layout learn exactly what the
default layout learns, and publish and checkpoint the same weights."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from apex_dqn.algo.learner import Learner
from apex_dqn.algo.torch_compat import resolve_channels_last
from apex_dqn.config import AlgoConfig, LearnerConfig, NetworkConfig, ReplayConfig
from apex_dqn.core.types import TransitionBatch
from tests.unit.learner_helpers import frames_batch

OBS = (4, 44, 44)  # the smallest frames the nature torso takes are 36x36


def _batch(n: int, seed: int) -> TransitionBatch:
    return frames_batch(n, seed, OBS, 3)


def _learner(channels_last: bool | str) -> Learner:
    return Learner(
        obs_shape=OBS,
        num_actions=3,
        network=NetworkConfig(torso="nature", hidden_sizes=[32]),
        algo=AlgoConfig(),
        learner=LearnerConfig(
            device="cpu", channels_last=channels_last, lr=1e-3, target_update_period=2
        ),
        replay=ReplayConfig(beta_anneal_steps=100),
        seed=0,
    )


def test_auto_is_on_for_a_cpu_learner_with_the_nature_torso_only():
    cpu, cuda = torch.device("cpu"), torch.device("cuda")
    assert resolve_channels_last("auto", cpu, "nature")
    assert not resolve_channels_last("auto", cpu, "minatar")  # not measured faster there
    assert not resolve_channels_last("auto", cuda, "nature")
    assert resolve_channels_last(True, cuda, "minatar")
    assert not resolve_channels_last(True, cpu, "mlp")  # no convolutions to lay out
    assert not resolve_channels_last(False, cpu, "nature")


def test_channels_last_learns_what_the_default_layout_learns():
    nhwc, nchw = _learner(True), _learner(False)
    conv = nhwc.online.torso[0].weight
    assert conv.is_contiguous(memory_format=torch.channels_last) and not conv.is_contiguous()
    assert nhwc.target.torso[0].weight.is_contiguous(memory_format=torch.channels_last)
    assert nchw.online.torso[0].weight.is_contiguous()
    for step in range(4):  # two target copies on the way
        batch, weights = _batch(8, step), np.linspace(0.5, 1.0, 8).astype(np.float32)
        results = [learner.step(learner.stage(batch, weights)) for learner in (nhwc, nchw)]
        assert results[0].metrics.loss == pytest.approx(results[1].metrics.loss, rel=1e-4)
        np.testing.assert_allclose(results[0].priorities_B, results[1].priorities_B, rtol=1e-4)
    # The same weights, published (C-ordered numpy, as actors and checkpoints read them)...
    published, reference = nhwc.get_weights(), nchw.get_weights()
    for key, value in reference.items():
        assert published[key].flags.c_contiguous
        np.testing.assert_allclose(published[key], value, rtol=1e-3, atol=2e-5)
    # ...and a checkpoint of the NHWC learner restores into the default one, and back.
    restored = _learner(False)
    restored.load_state_dict(nhwc.state_dict())
    for key, value in restored.get_weights().items():
        np.testing.assert_array_equal(value, published[key])
    back = _learner(True)
    back.load_state_dict(nchw.state_dict())
    assert back.online.torso[0].weight.is_contiguous(memory_format=torch.channels_last)


@pytest.mark.parametrize("saved_nhwc", [True, False])
def test_a_checkpoint_of_the_other_layout_resumes_with_the_same_adam_steps(saved_nhwc):
    saved = _learner(saved_nhwc)
    weights = np.ones(8, np.float32)
    for step in range(3):  # Adam's moments are non-zero
        saved.step(saved.stage(_batch(8, step), weights))
    moments = [s["exp_avg"].clone() for s in saved.optimizer.state.values()]
    same, other = _learner(saved_nhwc), _learner(not saved_nhwc)
    for learner in (same, other):
        learner.load_state_dict(saved.state_dict())
        for step in range(3, 6):
            learner.step(learner.stage(_batch(8, step), weights))
    for key, value in same.get_weights().items():
        np.testing.assert_allclose(other.get_weights()[key], value, rtol=1e-3, atol=2e-5)
    # The restored learners stepped their own copies, not the saved learner's moments.
    for before, slots in zip(moments, saved.optimizer.state.values(), strict=True):
        assert torch.equal(before, slots["exp_avg"])
