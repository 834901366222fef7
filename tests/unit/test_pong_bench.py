"""benchmarks/pong.py: the figures it reads from a run's files, written by the real RunTracker."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from apex_dqn.files.atomic import write_json_atomic
from apex_dqn.run.state import RunTracker
from tests.unit.benchmark_module import load_benchmark
from tests.unit.png_helpers import TAB_BLUE, TAB_GREEN, pixels_of


@pytest.fixture(scope="module")
def bench():
    """benchmarks/pong.py as a module."""
    return load_benchmark("pong.py", "pong_bench")


def _run_dir(
    tmp_path: Path,
    evals: list[tuple[int, int, float, float | None]],
    env_id: str = "ALE/Pong-v5",
    target: float | None = 18.0,
) -> Path:
    """A run directory as the runtime leaves it: (env steps, updates, return, confirm) evals."""
    tracker = RunTracker(env_id=env_id, seed=0, target_return=target)
    lines = []
    for steps, updates, mean_return, confirm in evals:
        tracker.env_steps, tracker.learner_steps = steps, updates
        lines.append(json.dumps(tracker.record()))
        details = {} if confirm is None else {"confirm_return": confirm}
        tracker.add_eval(mean_return, details)  # later ones must not move the solve
    run = tmp_path / "run"
    run.mkdir()
    (run / "metrics.jsonl").write_text("\n".join(lines) + "\n")
    write_json_atomic(run / "summary.json", tracker.summary())
    (run / "config.yaml").write_text(f"env:\n  id: {env_id}\neval:\n  epsilon: 0.01\n")
    return run


def test_the_target_is_the_first_confirmed_evaluation(bench, tmp_path):
    # 19.0 at 300k is not confirmed (17.5 on new games); 18.25 at 400k is (18.5).
    run = _run_dir(
        tmp_path,
        [
            (100_000, 5_000, -20.0, None),
            (300_000, 20_000, 19.0, 17.5),
            (400_000, 30_000, 18.25, 18.5),
            (500_000, 40_000, 20.0, 20.0),
        ],
    )
    figures = bench.summarise(run, "apex-dqn experiment=pong", update_budget=35_000)
    assert figures["solved"] and figures["env_steps_at_target"] == 400_000
    assert figures["learner_updates_at_target"] == 30_000
    # Each evaluation carries the updates made by its env steps; within 35,000 updates the
    # target came (30,000), and the best evaluation was 19.0 (40,000's 20.0 came after).
    assert [e["learner_updates"] for e in figures["evals"]] == [5_000, 20_000, 30_000, 40_000]
    assert figures["within_update_budget"] == {
        "updates": 35_000,
        "target_reached": True,
        "best_eval_return": 19.0,
    }
    assert (figures["solve_eval_return"], figures["confirm_eval_return"]) == (18.25, 18.5)
    assert [e["mean_return"] for e in figures["evals"]] == [-20.0, 19.0, 18.25, 20.0]
    assert figures["time_to_target_s"] == pytest.approx(figures["evals"][2]["process_s"], abs=0.1)

    out = tmp_path / "docs"
    figures["provenance"] = {
        "commit": None,
        "machine": {"cpu": "Some CPU", "cores": 2, "avx512_bf16": False},
    }
    bench.write_outputs(run, out, figures, log="console")
    written = json.loads((out / "pong.json").read_text())
    assert written["env_steps_at_target"] == 400_000
    # The curve redrawn from the evaluations, with the target line (both panels).
    curve = out / "learning_curve.png"
    assert pixels_of(curve, TAB_BLUE) > 400 and pixels_of(curve, TAB_GREEN) > 400
    assert (out / "console.log").read_text() == "console"
    assert "| reached | yes |" in bench.table(figures)
    assert "| target reached within 35,000 updates | yes |" in bench.table(figures)
    assert "| best evaluation within 35,000 updates | +19.00 |" in bench.table(figures)
    assert "| machine | Some CPU, 2 cores, native bf16 no |" in bench.table(figures)
    # Summarised again from its own copy in docs/ (--from-run <out> --out <out>).
    bench.write_outputs(out, out, figures, log=None)
    assert json.loads((out / "pong.json").read_text())["env_steps_at_target"] == 400_000


def test_a_run_that_misses_the_target_reports_no_time(bench, tmp_path):
    run = _run_dir(tmp_path, [(100_000, 5_000, -20.0, None), (200_000, 9_000, 17.9, None)])
    figures = bench.summarise(run, "cmd", update_budget=8_000)
    assert not figures["solved"] and figures["time_to_target_s"] is None
    assert figures["learner_updates_at_target"] is None and figures["best_eval_return"] == 17.9
    assert figures["within_update_budget"]["best_eval_return"] == -20.0
    assert "| reached | no |" in bench.table(figures)
    assert "| target reached within 8,000 updates | no |" in bench.table(figures)


def test_a_target_reached_after_the_update_budget_does_not_count_within_it(bench, tmp_path):
    run = _run_dir(tmp_path, [(100_000, 5_000, -20.0, None), (300_000, 50_000, 19.0, 19.5)])
    figures = bench.summarise(run, "cmd", update_budget=40_000)
    assert figures["solved"] and figures["learner_updates_at_target"] == 50_000
    assert figures["within_update_budget"]["target_reached"] is False
    assert bench.summarise(run, "cmd")["within_update_budget"] is None  # no budget, no row


def test_breakout_is_set_beside_the_peer_curve_window_by_window(bench, tmp_path):
    evals = [(100_000, 1, 2.0, None), (200_000, 2, 4.0, None), (300_000, 3, 6.0, None)]
    run = _run_dir(tmp_path, [*evals, (900_000, 9, 30.0, None)], "ALE/Breakout-v5", None)
    figures = bench.summarise(run, "apex-dqn env=atari env.id=ALE/Breakout-v5")
    assert figures["eval_epsilon"] == 0.01 and figures["env_steps"] == 900_000
    peer = bench.peer_comparison(figures, bench.DOPAMINE_BREAKOUT)
    # Three whole windows of 250k were run; the third held no evaluation.
    assert peer["window_ends"] == [250_000, 500_000, 750_000]
    assert peer["apex_dqn"] == [3.0, 6.0, None]
    assert peer["agents"]["DQN (JAX)"] == [1.8, 7.1, 14.2]
    figures.update(game="breakout", base=bench.GAMES["breakout"]["base"], peer=peer)
    text = bench.table(figures)
    assert "| ALE/Breakout-v5, env=atari env.id=ALE/Breakout-v5 | |" in text
    assert "| 250,000 | 3.0 | 1.8 | 1.7 |" in text and "| 750,000 | - | 14.2 | 11.5 |" in text
    assert "target" not in text and "| learner updates per env step (whole run) | 0.000 |" in text
    figures["provenance"] = {"commit": None, "machine": {"cpu": "c", "cores": 2, "avx512_bf16": 0}}
    bench.write_outputs(run, tmp_path / "out", figures, log=None)
    assert json.loads((tmp_path / "out" / "breakout.json").read_text())["peer"] == peer


def test_a_run_summarised_as_another_game_is_refused(bench, tmp_path):
    run = _run_dir(tmp_path, [(100_000, 1, 2.0, None)], "ALE/Breakout-v5", None)
    with pytest.raises(SystemExit, match="--game pong is ALE/Pong-v5, but the run played"):
        bench.main(["--from-run", str(run), "--out", str(tmp_path / "out")])
    assert not (tmp_path / "out").exists()


def test_a_live_run_records_the_commit_it_started_at(bench, tmp_path, monkeypatch):
    made = _run_dir(tmp_path, [(100_000, 5_000, -20.0, None)])
    prov = sys.modules["provenance"]  # the module pong.py took its provenance() from
    monkeypatch.setattr(prov, "commit", lambda: "started-at")
    prov.start()  # as when pong.py was started

    real_run = subprocess.run

    def run(cmd, **kwargs):  # the run: leaves its files, and HEAD moves on meanwhile
        if not any(a.startswith("output_dir=") for a in cmd):
            return real_run(cmd, **kwargs)  # git, for provenance
        out = Path(next(a for a in cmd if a.startswith("output_dir=")).split("=", 1)[1])
        for name in ("metrics.jsonl", "summary.json", "config.yaml"):
            shutil.copy(made / name, out / name)
        monkeypatch.setattr(prov, "commit", lambda: "committed-later")
        return subprocess.CompletedProcess(cmd, 0, "", "")

    monkeypatch.setattr(bench.subprocess, "run", run)
    bench.main(["--budget-s", "60", "--out", str(tmp_path / "out")])
    figures = json.loads((tmp_path / "out" / "pong.json").read_text())
    assert figures["provenance"]["commit"] == "started-at"
