"""benchmarks/adam_scale.py: per-tensor sqrt(v_hat) against Adam's epsilon, from a checkpoint."""

from __future__ import annotations

import math

import torch

from tests.unit.benchmark_module import load_benchmark
from tests.unit.learner_helpers import cartpole_batch, small_learner


def test_adam_scale_reads_the_optimizer_state_of_a_checkpoint(tmp_path):
    adam_scale = load_benchmark("adam_scale.py", "adam_scale_bench").adam_scale
    learner = small_learner(adam_eps=1e-3)
    weights = torch.ones(64).numpy()
    for _ in range(3):
        learner.step(learner.stage(cartpole_batch(), weights))
    path = tmp_path / "checkpoint.pt"
    torch.save({"learner": learner.state_dict()}, path)
    figures = adam_scale(path)
    assert figures["adam_eps"] == 1e-3 and figures["learner_steps"] == 3
    names = [t["name"] for t in figures["tensors"]]
    assert names == list(learner.online.state_dict().keys())
    # Recompute one tensor's figures by hand from Adam's state.
    state = learner.optimizer.state_dict()["state"][0]
    scale = (state["exp_avg_sq"] / (1 - 0.999**3)).sqrt()
    first = figures["tensors"][0]
    assert first["numel"] == scale.numel()
    assert math.isclose(first["median_sqrt_v"], float(scale.median()), rel_tol=1e-6)
    assert math.isclose(first["share_below_eps"], float((scale < 1e-3).float().mean()))
    total = sum(t["numel"] for t in figures["tensors"])
    below = sum(t["numel"] * t["share_below_eps"] for t in figures["tensors"])
    assert math.isclose(figures["share_of_weights_below_eps"], below / total, rel_tol=1e-9)
