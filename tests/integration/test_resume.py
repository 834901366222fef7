"""Interrupt a run with SIGINT, then resume it: counters, curve, weights and replay continue."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time

import pytest

from apex_dqn.algo.networks import weights_digest
from apex_dqn.config import Config
from apex_dqn.core.metrics import read_jsonl
from apex_dqn.files.checkpoint import load_checkpoint
from tests.integration.helpers import run_cli

pytestmark = [pytest.mark.ray, pytest.mark.slow]


def cfg_min_size_to_learn() -> int:
    """The run learned, so its replay held at least this many transitions."""
    return Config().replay.min_size_to_learn


def _records(run_dir):
    return read_jsonl(run_dir / "metrics.jsonl")


def test_sigint_writes_a_final_checkpoint_and_resume_continues_the_run(tmp_path):
    run_dir = tmp_path / "run"
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "apex_dqn",
            f"output_dir={run_dir}",
            "train.target_return=100000",
            "train.max_seconds=120",
            "train.report_interval_s=1",
            "checkpoint.every_s=1",
            "replay.snapshot_every_s=1",
        ],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    deadline = time.time() + 90
    while time.time() < deadline and proc.poll() is None:
        time.sleep(0.5)
        periodic = sorted((run_dir / "checkpoints").glob("step-*.pt"))
        if len(periodic) >= 2:
            break
    assert proc.poll() is None, proc.communicate()[1][-2000:]
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 128 + signal.SIGINT, err[-2000:]
    assert "interrupted by SIGINT" in out
    first = json.loads((run_dir / "summary.json").read_text())
    assert first["stop_reason"] == "interrupted by SIGINT" and first["interrupted_by"] == 2
    saved = load_checkpoint(run_dir / "checkpoint.pt")
    saved_steps = saved["learner_steps"]
    saved_digest = weights_digest({k: v.numpy() for k, v in saved["learner"]["online"].items()})
    assert saved_steps > 0 and (run_dir / "replay" / "shard0.npz").is_file()
    records_before = len(_records(run_dir))

    resumed = run_cli(
        f"resume={run_dir}", "train.max_seconds=6", "train.report_interval_s=1", timeout=120
    )
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    assert f"resumed at update {saved_steps:,}" in resumed.stdout
    second = json.loads((run_dir / "summary.json").read_text())
    assert second["resumes"] == 1
    # The learner came back with exactly the saved weights and counters ...
    assert second["resumed_from"]["weights_digest"] == saved_digest
    assert second["resumed_from"]["learner_steps"] == saved_steps
    # ... and went on from there; counters and the curve continue in the same files.
    assert second["learner_steps"] > saved_steps
    assert second["env_steps"] > first["env_steps"]
    assert second["wall_s"] > first["wall_s"]
    records = _records(run_dir)
    assert len(records) > records_before
    env_steps = [r["charts/env_steps"] for r in records]
    assert env_steps == sorted(env_steps), "metrics.jsonl went backwards across the resume"
    assert records[records_before]["charts/learner_steps"] >= saved_steps
    # The replay came back from the snapshot written when the run stopped: every transition
    # the stopped run held, not only those before the last periodic snapshot.
    assert first["replay_saved"] >= cfg_min_size_to_learn()
    assert second["resumed_from"]["replay_restored"] == first["replay_saved"]
    assert load_checkpoint(run_dir / "checkpoint.pt")["learner_steps"] == second["learner_steps"]
