"""benchmarks/learning.py: the summary math (time to reach, medians with never, speedups)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from tests.unit.benchmark_module import load_benchmark


@pytest.fixture(scope="module")
def bench():
    """benchmarks/learning.py as a module."""
    return load_benchmark("learning.py", "learning_bench")


def _curve(*points: tuple[float, float]) -> list[dict]:
    """(process_s, mean_return) pairs as a curve, env steps 1000 per second."""
    return [{"process_s": t, "env_steps": int(1000 * t), "mean_return": r} for t, r in points]


CURVE = _curve((10.0, 1.0), (20.0, 3.0), (30.0, 2.0), (40.0, 5.0))


def test_time_to_reach_is_the_first_point_at_or_above_target_within_budget(bench):
    assert bench.time_to_reach(CURVE, 2.5, budget_s=35) == 20.0
    assert bench.time_to_reach(CURVE, 3.0, budget_s=35) == 20.0  # reaching is >=
    assert bench.time_to_reach(CURVE, 0.5, budget_s=35) == 10.0
    # 5.0 comes at 40 s, past the budget: never reached within it
    assert bench.time_to_reach(CURVE, 4.0, budget_s=35) is None
    assert bench.time_to_reach(CURVE, 4.0, budget_s=45) == 40.0
    assert bench.time_to_reach(CURVE, None, budget_s=45) is None


def test_final_and_best_return_within_budget(bench):
    assert bench.final_return(CURVE, 35) == 2.0
    assert bench.best_return(CURVE, 35) == 3.0
    assert bench.final_return(CURVE, 45) == 5.0
    assert bench.final_return(CURVE, 5) is None and bench.best_return([], 5) is None


def test_median_time_counts_never_reached_seeds_as_infinite(bench):
    # sorted (10, 30, inf): the never-reached seed moves the median up to 30
    assert bench.median_time([10.0, None, 30.0]) == 30.0
    assert bench.median_time([30.0, 10.0, 20.0]) == 20.0
    assert bench.median_time([None, 4.0, 8.0, 6.0, 2.0]) == 6.0


def test_median_time_is_none_when_more_than_half_never_reach(bench):
    assert bench.median_time([None, None, 5.0]) is None
    assert bench.median_time([None, None, None]) is None
    assert bench.median_time([]) is None
    assert bench.median_time([None, 5.0, 7.0]) == 7.0  # one of three: still finite


def _run(system: str, seed: int, curve: list[dict]) -> dict:
    steps = curve[-1]["env_steps"] if curve else None
    return {"system": system, "seed": seed, "curve": curve, "env_steps": steps, "updates": 1}


def test_summary_speedup_against_sb3(bench):
    sb3 = [
        _run("sb3", 0, _curve((50, 1.0), (80, 4.0), (100, 4.0))),
        _run("sb3", 1, _curve((50, 1.0), (100, 3.0))),
        _run("sb3", 2, _curve((60, 4.5), (100, 5.0))),
    ]
    apex = [
        _run("apex", 0, _curve((10, 2.0), (20, 4.0))),
        _run("apex", 1, _curve((25, 4.0), (100, 6.0))),
        _run("apex", 2, _curve((30, 1.0))),  # never reaches 4.0
    ]
    summary = bench.summarize(apex + sb3, budget_s=100)
    assert summary["sb3_budget_return"] == 4.0  # median of the final returns 4, 3, 5
    assert [r["time_to_reach_s"] for r in apex] == [20.0, 25.0, None]
    assert [r["time_to_reach_s"] for r in sb3] == [80.0, None, 60.0]
    assert summary["apex"]["time_to_reach_median_s"] == 25.0
    assert summary["sb3"]["time_to_reach_median_s"] == 80.0  # (60, 80, inf)
    assert summary["speedup_vs_sb3"] == pytest.approx(100 / 25)
    assert summary["speedup_vs_sb3_time_to_reach"] == pytest.approx(80 / 25)
    assert summary["apex"]["final_return_median"] == 4.0  # finals 4, 6, 1
    assert summary["apex"]["best_return_median"] == 4.0  # bests 4, 6, 1


def test_summary_against_the_reference_return(bench):
    """Each system's median time to the reference on its curve; apex-dqn reaches it when its
    median confirmed time (a run's time_to_solve_s) is within the budget."""
    sb3 = [
        _run("sb3", 0, _curve((50, 1.0), (100, 2.0))),
        _run("sb3", 1, _curve((50, 1.0), (90, 6.0))),
    ]
    apex = [
        {**_run("apex", 0, _curve((10, 2.0), (20, 6.0))), "time_to_solve_s": 30.0},
        {**_run("apex", 1, _curve((25, 6.0), (100, 8.0))), "time_to_solve_s": 35.0},
        {**_run("apex", 2, _curve((30, 1.0))), "time_to_solve_s": None},
    ]
    summary = bench.summarize(apex + sb3, budget_s=100, reference=5.0)
    assert summary["reference_return"] == 5.0
    assert summary["apex"]["time_to_reference_median_s"] == 25.0  # (20, 25, inf)
    assert summary["sb3"]["time_to_reference_median_s"] is None  # (90, inf): median inf
    assert (
        summary["apex"]["time_to_target_median_s"] == 35.0 and summary["apex"]["reaches_reference"]
    )
    assert summary["return_ratio_vs_sb3"] == pytest.approx(6.0 / 4.0)  # finals 6, 8, 1 / 2, 6
    apex[1]["time_to_solve_s"] = None  # two of three never confirm: no median
    assert not bench.summarize(apex + sb3, budget_s=100, reference=5.0)["apex"]["reaches_reference"]
    without = bench.summarize(apex + sb3, budget_s=100)
    assert without["reference_return"] is None and "reaches_reference" not in without["apex"]
    negative = [_run("sb3", 0, _curve((50, -3.0)))]
    assert bench.summarize(apex + negative, budget_s=100)["return_ratio_vs_sb3"] is None


@pytest.mark.parametrize(
    "argv",
    [
        ["Breakout", "--seeds", "0"],
        ["Breakout", "--seeds", "3", "--sb3-seeds", "4"],
        ["Breakout", "--seeds", "3", "--sb3-seeds", "-1"],
        ["Breakout", "--apex-target", "10", "--reference-return", "10"],
    ],
)
def test_bad_seed_counts_and_both_targets_are_refused(bench, argv, capsys):
    with pytest.raises(SystemExit):
        bench.parse_args(argv)
    assert "error:" in capsys.readouterr().err


def test_apex_confirms_the_reference_but_runs_on(bench):
    assert bench._apex_stop(None, 20.0) == ["train.target_return=20", "train.stop_on_target=false"]
    assert bench._apex_stop(10.0, 20.0) == ["train.target_return=10", "train.stop_on_target=true"]
    assert bench._apex_stop(None) == ["train.stop_on_target=false"]


def test_no_speedup_when_apex_mostly_never_reaches(bench):
    sb3 = [_run("sb3", 0, _curve((50, 1.0), (100, 4.0)))]
    apex = [_run("apex", 0, _curve((10, 2.0))), _run("apex", 1, _curve((10, 3.0)))]
    summary = bench.summarize(apex + sb3, budget_s=100)
    assert summary["apex"]["time_to_reach_median_s"] is None
    assert summary["speedup_vs_sb3"] is None and summary["speedup_vs_sb3_time_to_reach"] is None
    only_apex = bench.summarize([_run("apex", 0, _curve((10, 2.0)))], budget_s=100)
    assert only_apex["sb3_budget_return"] is None and only_apex["speedup_vs_sb3"] is None


def test_median_curve_is_stepwise_and_waits_for_every_seed(bench):
    curves = [_curve((1.0, 1.0), (3.0, 5.0)), _curve((2.0, 3.0)), _curve((2.0, 7.0))]
    grid = np.array([0.5, 1.5, 2.0, 2.5, 3.0])
    median = bench.median_curve(curves, grid)
    assert math.isnan(median[0]) and math.isnan(median[1])
    assert median[2:].tolist() == [3.0, 3.0, 5.0]


def test_run_order_alternates_the_first_system(bench):
    assert bench.run_order([100, 101, 102], ["apex", "sb3"]) == [
        ("apex", 100),
        ("sb3", 100),
        ("sb3", 101),
        ("apex", 101),
        ("apex", 102),
        ("sb3", 102),
    ]


def test_seed_list_starts_at_first_seed_and_gives_sb3_a_prefix(bench):
    assert bench.seed_list(100, 3, 2) == {"apex": [100, 101, 102], "sb3": [100, 101]}
    assert bench.seed_list(0, 2) == {"apex": [0, 1], "sb3": [0, 1]}


def test_apex_curve_from_summary_evals(bench):
    evals = [{"env_steps": 100, "wall_s": 1.0, "process_s": 6.0, "mean_return": 2.0}]
    assert bench.apex_curve({"evals": evals}) == evals
    assert bench.apex_curve({}) == []
