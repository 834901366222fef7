"""A Hydra multirun through the real CLI: jobs in one process, Ray restarted cleanly between
them, each job its own directory, and the sweep summary in the sweep directory."""

from __future__ import annotations

import csv
import json

import pytest

from tests.integration.helpers import run_cli


@pytest.mark.slow
@pytest.mark.ray
def test_two_job_multirun_writes_job_dirs_and_sweep_summary(tmp_path):
    sweep = tmp_path / "sweep"
    proc = run_cli(
        "-m",
        "seed=0,1",
        "train.max_seconds=4",
        "train.target_return=1000",
        "eval.interval_s=1",
        f"hydra.sweep.dir={sweep}",
        timeout=240,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    summaries = [json.loads((sweep / job / "summary.json").read_text()) for job in ("0", "1")]
    for job in ("0", "1"):
        assert (sweep / job / "metrics.jsonl").read_text().strip()
    # Jobs share one process: each counts its times from its own start, not the process's.
    assert summaries[1]["started_at"] >= summaries[0]["started_at"] + summaries[0]["wall_s"]
    assert all(e["process_s"] < summaries[1]["wall_s"] + 1 for e in summaries[1]["evals"])
    with (sweep / "sweep_summary.csv").open() as f:
        rows = list(csv.DictReader(f))
    assert [r["job"] for r in rows] == ["0", "1"] and [r["seed"] for r in rows] == ["0", "1"]
    assert all(int(r["env_steps"]) > 0 and r["stop_reason"] for r in rows)
    table = (sweep / "sweep_summary.md").read_text()
    assert "| job | seed | solved |" in table and table.count("\n| 1 | 1 |") == 1
    assert "`train.max_seconds=4`" in table  # shared overrides are listed once
    assert (sweep / "sweep_summary.png").read_bytes()[:4] == b"\x89PNG"
    assert "sweep summary" in proc.stdout
