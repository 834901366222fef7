"""benchmarks/gpu_check.py in its dry mode: every step of the GPU check runs on the CPU (the
paths that need no CUDA), so the script is ready, not rotten, on the day a GPU is lent."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

pytest.importorskip("ale_py")


@pytest.mark.slow
@pytest.mark.ray
def test_the_gpu_check_runs_every_step_in_its_dry_mode(tmp_path):
    proc = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "gpu_check.py"), "--out", str(tmp_path),
         "--dry-run"],
        capture_output=True, text=True, timeout=600, stdin=subprocess.DEVNULL,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    figures = json.loads((tmp_path / "gpu_check.json").read_text())
    assert set(figures["steps"]) == {"gpu_tests", "learner", "learners", "pong"}
    assert all(step["returncode"] == 0 for step in figures["steps"].values())
    assert "skipped" in figures["gpu_tests_tail"][0]  # no CUDA here: collected, then skipped
    assert figures["learner_device"] == "cpu" and figures["learner_full_path_updates_per_s"] > 0
    assert [e["num_learners"] for e in figures["learners"]] == [1, 2]
    assert figures["pong_learner_updates_per_s"] > 0 and figures["pong_vs_full_path"] > 0
    assert (tmp_path / "pong.json").is_file()
    # What comes back from the device machine: at most 8 files, none in subfolders.
    returned = [p for p in tmp_path.rglob("*") if p.is_file()]
    assert len(returned) <= 8 and all(p.parent == tmp_path for p in returned)
