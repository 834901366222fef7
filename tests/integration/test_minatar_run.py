"""A MinAtar run through the real CLI on real Ray: the env=minatar group end to end."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from apex_dqn.algo.networks import build_q_network
from apex_dqn.config import NetworkConfig
from apex_dqn.files.checkpoint import load_checkpoint
from tests.integration.helpers import run_cli

pytest.importorskip("minatar")


@pytest.mark.slow
@pytest.mark.ray
def test_minatar_group_trains_evaluates_and_reports_process_time(tmp_path):
    out = tmp_path / "space_invaders"
    proc = run_cli(
        "env=minatar",
        "env.id=MinAtar/SpaceInvaders-v1",
        "replay.min_size_to_learn=1000",
        "eval.episodes=2",
        "eval.interval_s=1",
        "train.max_seconds=20",
        "train.report_interval_s=1",
        f"output_dir={out}",
        timeout=240,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    summary = json.loads((out / "summary.json").read_text())
    assert summary["env_id"] == "MinAtar/SpaceInvaders-v1" and summary["learner_steps"] > 0
    evals = summary["evals"]
    assert evals, "no greedy evaluation in 20 s"
    # process_s counts from the process's start, wall_s from training's: Ray and imports first.
    assert all(e["process_s"] > e["wall_s"] > 0 for e in evals)
    assert [e["env_steps"] for e in evals] == sorted(e["env_steps"] for e in evals)
    # It learns: SpaceInvaders pays +1 per alien shot, and a random policy shoots some, so the
    # Q-values of the sampled actions rise from about 0 (an untrained network's, checked here)
    # toward the discounted returns (several points) within seconds of updates.
    records = [json.loads(x) for x in (out / "metrics.jsonl").read_text().splitlines()]
    mean_q = [r["losses/mean_q"] for r in records if r.get("losses/mean_q") is not None]
    # The first record may come at the very first updates (about 0.06): the latest must be up.
    assert len(mean_q) >= 3 and mean_q[-1] > 0.25, mean_q
    untrained = build_q_network(
        NetworkConfig(torso="minatar"), obs_shape=(6, 10, 10), num_actions=4
    )
    obs = torch.from_numpy(np.random.default_rng(0).random((256, 6, 10, 10)) < 0.1).to(torch.uint8)
    with torch.no_grad():
        assert untrained(obs).abs().mean() < 0.1
    ckpt = load_checkpoint(out / "checkpoint.pt")
    assert list(ckpt["env"]["obs_shape"]) == [6, 10, 10] and ckpt["env"]["obs_dtype"] == "uint8"
    online = ckpt["learner"]["online"]
    assert tuple(online["torso.0.weight"].shape) == (16, 6, 3, 3)  # MinAtar's 3x3 convolution
    assert tuple(online["torso.3.weight"].shape) == (128, 16 * 8 * 8)
    assert tuple(online["advantage_head.weight"].shape) == (4, 128)  # 4 minimal actions
