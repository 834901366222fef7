"""The benchmark scripts run and write the JSON figures their issues name (tiny budgets), and
their tables print those figures."""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

import pytest

from tests.unit.png_helpers import TAB_BLUE, TAB_ORANGE, pixels_of

ROOT = Path(__file__).resolve().parents[2]


def _run(script: str, *args: str, timeout: float = 240) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / script), *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        stdin=subprocess.DEVNULL,
    )


@pytest.mark.slow
@pytest.mark.ray
def test_learner_bench_measures_step_and_full_path(tmp_path):
    out = tmp_path / "learner.json"
    proc = _run(
        "learner_bench.py",
        *("--device", "cpu", "--batch-size", "8", "--seconds", "0.5", "--repeats", "1"),
        *("--warmup", "1", "--shards", "2", "--capacity", "256", "--json", str(out)),
        *("--learners", "1,2"),
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    figures = json.loads(out.read_text())
    assert figures["device"] == "cpu" and figures["batch_size"] == 8
    step, full = figures["step_only_samples_per_s"], figures["full_path_samples_per_s"]
    assert step > 0 and full > 0
    # The full path is the step plus sampling through Ray: it cannot outrun the step alone
    # by more than the noise of two half-second windows.
    assert full < 2 * step
    # The table prints the JSON's figures, and updates/s are samples/s over the batch.
    threads = figures["variants"][0]["threads"]
    row = (
        f"| eager fp32 | {threads} | {step:,.0f} | {step / 8:,.1f} | {full:,.0f} | "
        f"{full / 8:,.1f} |"
    )
    assert row in proc.stdout, proc.stdout
    one, two = figures["learners"]
    assert (one["num_learners"], two["num_learners"]) == (1, 2)
    assert one["samples_per_s"] > 0 and two["samples_per_s"] > 0
    ratio = two["samples_per_s"] / one["samples_per_s"]
    # Two learners on the same two cores step at most twice the batches of one (a counting
    # error, e.g. a group's batches counted once per learner and again for the group, breaks it).
    assert ratio < 2.5
    assert f"| 2 | {two['samples_per_s']:,.0f} | {ratio:.2f}x |" in proc.stdout


def test_learner_bench_step_variants_and_profile_without_ray(tmp_path):
    """bf16 and channels-last, apart and together (what a CPU with native bf16 gets by
    default), at two thread counts, and the operator profile: every variant a row of its own,
    and the profile's operators those of a convolutional update."""
    out = tmp_path / "learner.json"
    proc = _run(
        "learner_bench.py",
        *("--device", "cpu", "--batch-size", "8", "--seconds", "0.3", "--repeats", "1"),
        *("--warmup", "1", "--skip-full-path", "--channels-last", "--amp", "--threads", "1,2"),
        *("--profile", "--json", str(out)),
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    figures = json.loads(out.read_text())
    rows = [(r["variant"], r["threads"], r["amp"], r["channels_last"]) for r in figures["variants"]]
    names = [
        ("eager fp32", False, False),
        ("bf16 autocast", True, False),
        ("channels-last fp32", False, True),
        ("channels-last bf16 autocast", True, True),
    ]
    assert rows == [(name, k, amp, nhwc) for k in (1, 2) for name, amp, nhwc in names]
    assert all(r["step_only"] > 0 and "full_path" not in r for r in figures["variants"])
    ops = figures["profile"]
    assert 0 < sum(op["share"] for op in ops) <= 1.0001
    assert any("conv" in op["op"] for op in ops), [op["op"] for op in ops]
    assert f"| {ops[0]['op']} | {ops[0]['ms_per_update']:.2f} |" in proc.stdout
    assert figures["provenance"]["machine"]["cores"] >= 1


def test_replay_bench_frame_memory_run(tmp_path):
    out = tmp_path / "frames.json"
    proc = _run(
        "replay_bench.py",
        *("--atari-frames", "3000", "--frames-only", "--seconds", "0.2", "--repeats", "1"),
        *("--json", str(out)),
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    frames = json.loads(out.read_text())["atari_frames"]
    assert frames["capacity"] == 3000 and 0 < frames["replay_gib"] < frames["naive_gib"]
    assert frames["frames_per_transition"] == pytest.approx(1.0, abs=0.05)


@pytest.mark.slow
@pytest.mark.ray
def test_throughput_bench_runs_pong_on_the_default_stepper(tmp_path):
    """A short whole-system Pong run through the benchmark with the defaults' stepper (ale-py's
    vector env, pipelined lanes), unthrottled: the learner held to 0.2 samples per transition."""
    out = tmp_path / "throughput.json"
    proc = _run(
        "throughput.py",
        *("--actors", "1", "--seconds", "20", "--report-interval-s", "2"),
        *("--raw-seconds", "0.5", "--json", str(out)),
        *("--configs", "unthrottled", "--override", "replay.min_size_to_learn=1000"),
        *("--override", "actors.envs_per_actor=4", "--override", "actors.push_every=64"),
        *("--override", "learner.batch_size=32"),
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    figures = json.loads(out.read_text())
    assert figures["env_id"] == "ALE/Pong-v5" and figures["raw_env_steps_per_s"] > 0
    assert figures["vector_mode"] == "ale" and figures["raw_env_kind"] == "ale-py vector env, 1 env"
    # The actor's own vector env stepped alone is the other baseline.
    assert figures["raw_vector_env_num_envs"] == 4 and figures["raw_vector_env_steps_per_s"] > 0
    (run,) = figures["runs"]
    assert run["num_actors"] == 1 and run["config"] == "unthrottled"
    steps, updates = run["env_steps_per_s"], run["learner_updates_per_s"]
    assert steps > 0 and updates > 0
    # The learner is held to 0.2 samples per transition (a little over while it catches up),
    # and the ratio is the updates' samples over the env steps of the same window.
    assert 0 < run["replay_ratio"] < 0.5
    assert run["replay_ratio"] == pytest.approx(updates * 32 / steps, rel=1e-6)
    assert run["env_frames_per_s"] == pytest.approx(4 * steps)  # frame skip 4
    raw = figures["raw_env_steps_per_s"]
    row = (
        f"| 1 actor(s) + learner | unthrottled | {steps:,.0f} | {4 * steps:,.0f} | "
        f"{steps / raw:.0%} | {updates:.1f} | {run['replay_ratio']:.2f} |"
    )
    assert row in proc.stdout, proc.stdout


@pytest.mark.slow
def test_learning_bench_sb3_breakout_curve(tmp_path):
    """A 12 s SB3 DQN run on MinAtar Breakout through the learning benchmark: the worker's
    snapshots, evaluated afterwards, make a curve within the budget."""
    out = tmp_path / "learning.json"
    budget = 12.0
    proc = _run(
        "learning.py",
        *("Breakout", "--budget-s", str(budget), "--seeds", "1", "--systems", "sb3"),
        *("--snapshot-every-s", "3"),
        *("--eval-episodes", "2", "--json", str(out), "--png", str(tmp_path / "learning.png")),
        timeout=150,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    figures = json.loads(out.read_text())
    assert figures["env_id"] == "MinAtar/Breakout-v1" and figures["order"] == [["sb3", 0]]
    assert figures["seeds"] == {"apex": [0], "sb3": [0]}
    assert len(figures["provenance"]["commit"]) == 40
    (run,) = figures["runs"]
    assert run["system"] == "sb3" and run["seed"] == 0 and run["returncode"] == 0
    curve = run["curve"]
    assert len(curve) >= 2, "fewer than two snapshots were evaluated"
    steps = [p["env_steps"] for p in curve]
    assert steps == sorted(steps) and len(set(steps)) == len(steps)
    assert all(0 < p["process_s"] <= budget + 1.0 for p in curve)
    assert all(math.isfinite(p["mean_return"]) for p in curve)
    assert run["env_steps"] == steps[-1] > 0
    # SB3 with the reference settings: one update per env step once learning starts.
    assert 0 <= run["updates"] <= run["env_steps"]
    assert figures["summary"]["sb3_budget_return"] == curve[-1]["mean_return"]
    assert "| Stable-Baselines3 DQN | 0 |" in proc.stdout
    assert "| **Stable-Baselines3 DQN median** |" in proc.stdout
    # SB3's curves are drawn (its colour), and no apex-dqn curve (the other's) where none ran.
    assert pixels_of(tmp_path / "learning.png", TAB_ORANGE) > 200
    assert pixels_of(tmp_path / "learning.png", TAB_BLUE) < 20


@pytest.mark.slow
@pytest.mark.ray
def test_startup_bench_times_the_floor_and_the_first_update(tmp_path):
    out = tmp_path / "startup.json"
    # A short run: the start-up figures do not need a solve.
    proc = _run("startup.py", "--repeats", "1", "--json", str(out), "train.max_env_steps=3000")
    assert proc.returncode == 0, proc.stderr[-3000:]
    figures = json.loads(out.read_text())
    (floor,), (run,) = figures["floor_s"], figures["apex"]
    assert 0 < floor < 60
    # Launch to first update is launch to Python plus Python to first update, and the whole
    # command lasts longer than either.
    assert run["first_update_s"] == pytest.approx(
        run["launch_to_python_s"] + run["process_to_first_update_s"], abs=1e-6
    )
    assert 0 < run["process_to_first_update_s"] < run["command_wall_s"]
    assert figures["ratio"] == pytest.approx(run["first_update_s"] / floor)
    assert f"| floor: Ray + one torch actor ready | {floor:.2f} | 1 |" in proc.stdout
    assert f"| ratio | {figures['ratio']:.2f}x | |" in proc.stdout


def test_cartpole_vs_sb3_summary_is_the_ratio_of_the_medians():
    sys.path.insert(0, str(ROOT / "benchmarks"))
    from cartpole_vs_sb3 import summarize

    apex = [{"wall_s": w, "solved": True} for w in (10.0, 30.0, 14.0)]
    sb3 = [{"wall_s": w, "solved": s} for w, s in ((20.0, True), (40.0, False), (8.0, True))]
    summary = summarize(apex, sb3)
    assert summary["ratio"] == pytest.approx(14.0 / 20.0)
    assert (summary["apex_solved"], summary["sb3_solved"]) == (3, 2)
