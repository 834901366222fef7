"""The Hydra app as a user runs it: bad input fails fast and clean; the local runtime learns."""

from __future__ import annotations

import json
import time

import pytest

from tests.integration.helpers import check_run_dir, run_cli


@pytest.mark.parametrize(
    ("overrides", "fragment"),
    [
        (("actors.num_actors=0",), "actors.num_actors must be an integer in [1, 4096], got 0"),
        (("env.id=Pendulum-v1",), "needs a Discrete action space"),
        (("env.id=NoSuchEnv-v9",), "not a registered gymnasium environment"),
        (("replay.capacity=32",), "replay.capacity / replay.num_shards must be >="),
    ],
)
def test_bad_config_fails_before_ray_with_one_clear_line(tmp_path, overrides, fragment):
    start = time.time()
    proc = run_cli(*overrides, f"output_dir={tmp_path}/run", timeout=60)
    assert proc.returncode == 2, proc.stderr
    assert fragment in proc.stderr
    assert "Traceback" not in proc.stderr + proc.stdout
    assert "Ray" not in proc.stderr, "Ray must not start for a bad config"
    assert not (tmp_path / "run").exists(), "a failed run must not create its output"
    assert time.time() - start < 20


def test_type_error_names_the_key(tmp_path):
    proc = run_cli("learner.lr=fast", f"output_dir={tmp_path}", timeout=60)
    assert proc.returncode != 0
    assert "learner.lr" in proc.stderr and "fast" in proc.stderr


@pytest.mark.slow
def test_local_runtime_learns_and_writes_outputs(tmp_path):
    out = tmp_path / "run"
    proc = run_cli(
        "runtime=local",
        "train.target_return=150",
        "train.max_seconds=90",
        "train.report_interval_s=1",
        f"output_dir={out}",
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    summary = check_run_dir(out, env_id="CartPole-v1", obs_dim=4, num_actions=2)
    assert summary["solved"] and summary["best_eval_return"] >= 150


@pytest.mark.slow
@pytest.mark.ray
def test_eval_disabled_runs_no_evaluator(tmp_path):
    out = tmp_path / "run"
    proc = run_cli(
        "eval.enabled=false", "train.max_seconds=15", "train.report_interval_s=1",
        f"output_dir={out}",
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    summary = json.loads((out / "summary.json").read_text())
    assert summary["learner_steps"] > 0 and summary["best_eval_return"] is None
    records = [json.loads(x) for x in (out / "metrics.jsonl").read_text().splitlines()]
    assert not any(k.startswith("eval/") for r in records for k in r)
    lines = [x for x in proc.stdout.splitlines() if "s] env " in x]
    assert lines and all("| eval - |" in x for x in lines)
