"""The CUDA learner: pinned staging on a side stream, TF32 updates, bf16 autocast. Runs only
where torch sees a GPU (marker ``gpu``); skipped elsewhere."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from apex_dqn.algo.learner import Learner
from apex_dqn.config import AlgoConfig, LearnerConfig, NetworkConfig, ReplayConfig
from apex_dqn.core.types import TransitionBatch
from tests.unit.learner_helpers import frames_batch

pytestmark = [
    pytest.mark.gpu,
    pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA"),
]

OBS = (4, 84, 84)


def _batch(n: int = 32, seed: int = 0) -> TransitionBatch:
    return frames_batch(n, seed, OBS, 6, behaviour=True)


def _learner(device: str, **overrides) -> Learner:
    return Learner(
        obs_shape=OBS,
        num_actions=6,
        network=NetworkConfig(torso="nature"),
        algo=AlgoConfig(n_step=3),
        learner=LearnerConfig(device=device, lr=1e-4, **overrides),
        replay=ReplayConfig(),
        seed=0,
    )


def test_cuda_updates_match_the_cpu_learner():
    """Same seed, same batches: the GPU learner (async pinned staging, TF32 matmuls) tracks
    the CPU learner's losses and priorities within TF32's precision."""
    cpu, gpu = _learner("cpu"), _learner("cuda")
    assert gpu.stages_async and not cpu.stages_async
    w = np.linspace(0.2, 1.0, 32).astype(np.float32)
    for k in range(5):
        batch = _batch(seed=k)
        m_cpu, p_cpu = cpu.step(cpu.stage(batch, w))
        m_gpu, p_gpu = gpu.step(gpu.stage(batch, w))
        assert p_gpu.dtype == np.float32 and p_gpu.shape == (32,)
        assert m_gpu.loss == pytest.approx(m_cpu.loss, rel=2e-2)
        np.testing.assert_allclose(p_gpu, p_cpu, rtol=5e-2, atol=1e-3)


def test_staging_ahead_does_not_change_the_update():
    """Two batches staged before either update (as the learner host prefetches) give the
    updates that staging each right before its update gives."""
    a, b = _learner("cuda"), _learner("cuda")
    w = np.ones(32, np.float32)
    batches = [_batch(seed=k) for k in range(2)]
    staged = [a.stage(x, w) for x in batches]
    for x, s in zip(batches, staged, strict=True):
        m_a, p_a = a.step(s)
        m_b, p_b = b.step(b.stage(x, w))
        # cuDNN may pick non-deterministic kernels: equal up to float rounding.
        assert m_a.loss == pytest.approx(m_b.loss, rel=1e-5)
        np.testing.assert_allclose(p_a, p_b, rtol=1e-5, atol=1e-6)


def test_bf16_autocast_on_cuda_tracks_float32():
    ref, amp = _learner("cuda"), _learner("cuda", amp=True)
    assert amp.amp and not ref.amp
    w = np.ones(32, np.float32)
    for k in range(3):
        m_ref, _ = ref.step(ref.stage(_batch(seed=k), w))
        m_amp, p_amp = amp.step(amp.stage(_batch(seed=k), w))
        assert np.isfinite(p_amp).all()
        assert m_amp.loss == pytest.approx(m_ref.loss, rel=0.1)
