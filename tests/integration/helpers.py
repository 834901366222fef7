"""Running the real CLI in a subprocess and reading a run directory."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import torch

from apex_dqn.core.metrics import SUMMARY_KEYS, in_catalogue
from apex_dqn.files.checkpoint import load_checkpoint


def run_cli(*overrides: str, timeout: float = 240) -> subprocess.CompletedProcess:
    """``python -m apex_dqn <overrides>``, capturing output."""
    return subprocess.run(
        [sys.executable, "-m", "apex_dqn", *overrides],
        capture_output=True,
        text=True,
        timeout=timeout,
        stdin=subprocess.DEVNULL,
    )


def check_run_dir(out: Path, *, env_id: str, obs_dim: int, num_actions: int) -> dict:
    """Assert that a finished run left every file with sane contents; return its summary."""
    summary = json.loads((out / "summary.json").read_text())
    assert set(SUMMARY_KEYS) <= set(summary)
    assert summary["env_id"] == env_id and summary["env_steps"] > 0
    assert summary["learner_steps"] > 0 and summary["wall_s"] > 0
    records = [json.loads(x) for x in (out / "metrics.jsonl").read_text().splitlines()]
    assert records, "metrics.jsonl is empty"
    unknown = {k for r in records for k in r if not in_catalogue(k)}
    assert not unknown, f"metric keys outside the catalogue: {unknown}"
    assert all("charts/env_steps" in r and "charts/wall_s" in r for r in records)
    steps = [r["charts/env_steps"] for r in records]
    assert steps == sorted(steps) and steps[-1] == summary["env_steps"]
    assert (out / "learning_curve.png").read_bytes()[:4] == b"\x89PNG"
    assert (out / "training.png").read_bytes()[:4] == b"\x89PNG"
    assert f"id: {env_id}" in (out / "config.yaml").read_text()
    ckpt = load_checkpoint(out / "checkpoint.pt")
    assert ckpt["env"]["obs_shape"] == [obs_dim] or ckpt["env"]["obs_shape"] == (obs_dim,)
    # The final checkpoint is taken after the learner's last update, as the summary's counters.
    assert ckpt["learner_steps"] == summary["learner_steps"] > 0
    head = [
        v for k, v in ckpt["learner"]["online"].items() if "advantage" in k and k.endswith("weight")
    ]
    assert head and head[-1].shape[0] == num_actions
    assert all(torch.isfinite(v).all() for v in ckpt["learner"]["online"].values())
    return summary
