"""apex-dqn-plot: runs read from their directories, grouped over seeds, mean and spread."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest
import yaml

from apex_dqn.files.plotting import group_runs, load_run, mean_and_spread
from tests.unit.cli_helpers import fails_in_one_line
from tests.unit.png_helpers import TAB_BLUE, TAB_GREEN, TAB_ORANGE, pixels_of


def _fake_run(path, *, seed: int, lr: float, scale: float) -> None:
    """A run directory as the trainer leaves it: config.yaml and metrics.jsonl."""
    path.mkdir(parents=True)
    config = {"env": {"id": "CartPole-v1"}, "learner": {"lr": lr}, "seed": seed}
    (path / "config.yaml").write_text(yaml.safe_dump(config))
    lines = []
    for i in range(1, 11):
        lines.append(
            json.dumps(
                {
                    "charts/env_steps": 1000 * i,
                    "charts/wall_s": 2.0 * i,
                    "perf/env_steps_per_s": 500.0,
                    "perf/learner_updates_per_s": 20.0,
                    "losses/loss": 1.0 / i,
                    # each evaluation appears in two records; the plot keeps it once
                    "eval/mean_return": scale * ((i + 1) // 2),
                    "eval/weights_version": (i + 1) // 2,
                }
            )
        )
    (path / "metrics.jsonl").write_text("\n".join(lines) + "\n")


def test_runs_group_by_config_without_seed_and_average(tmp_path):
    for seed, scale in ((0, 10.0), (1, 30.0)):
        _fake_run(tmp_path / f"a{seed}", seed=seed, lr=1e-3, scale=scale)
    _fake_run(tmp_path / "b0", seed=0, lr=2e-3, scale=5.0)
    runs = [load_run(tmp_path / name) for name in ("a0", "a1", "b0")]
    assert list(runs[0].eval_return) == [10, 20, 30, 40, 50]  # one point per evaluation
    assert list(runs[0].eval_steps) == [1000, 3000, 5000, 7000, 9000]
    groups = group_runs(runs)
    assert sorted(groups) == ["learner.lr=0.001", "learner.lr=0.002"]
    assert [r.path.name for r in groups["learner.lr=0.001"]] == ["a0", "a1"]
    a = groups["learner.lr=0.001"]
    grid, mean, std = mean_and_spread([r.eval_steps for r in a], [r.eval_return for r in a])
    assert grid[0] == 1000 and grid[-1] == 9000
    np.testing.assert_allclose(mean, 2 * np.interp(grid, a[0].eval_steps, a[0].eval_return))
    np.testing.assert_allclose(std, np.interp(grid, a[0].eval_steps, a[0].eval_return))


def test_every_evaluation_listed_in_eval_new_is_drawn_once(tmp_path):
    """Two evaluations between two records both count (the records' own eval/mean_return shows
    only the later); a resumed run's entries replace the first run's from their index on."""
    run = tmp_path / "run"
    run.mkdir()
    (run / "config.yaml").write_text(yaml.safe_dump({"env": {"id": "CartPole-v1"}}))

    def entry(index: int, steps: int, ret: float) -> dict:
        return {"index": index, "env_steps": steps, "wall_s": steps / 100, "mean_return": ret}

    records = [
        {"charts/env_steps": 1000, "eval/mean_return": 10.0, "eval/new": [entry(0, 900, 10.0)]},
        {
            "charts/env_steps": 3000,
            "eval/mean_return": 30.0,
            "eval/new": [entry(1, 2000, 20.0), entry(2, 2900, 30.0)],
        },
        {"charts/env_steps": 3500, "eval/mean_return": 30.0, "eval/new": []},
        # resumed from a checkpoint at 2,500 env steps: index 2 again, then index 3
        {"charts/env_steps": 3200, "eval/mean_return": 25.0, "eval/new": [entry(2, 3100, 25.0)]},
        {"charts/env_steps": 4000, "eval/mean_return": 40.0, "eval/new": [entry(3, 3900, 40.0)]},
        {"charts/env_steps": 4100, "eval/mean_return": 41.0, "eval/new": [entry(4, 4050, 41.0)]},
        # resumed again, from 3,800 env steps, stopped before its next evaluation: the second
        # run's index 4 was never reached again and is not drawn
        {"charts/env_steps": 3950, "eval/mean_return": 39.0, "eval/new": [entry(3, 3920, 39.0)]},
    ]
    (run / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records))
    data = load_run(run)
    assert list(data.eval_steps) == [900, 2000, 3100, 3920]
    assert list(data.eval_return) == [10.0, 20.0, 25.0, 39.0]
    assert list(data.eval_wall_s) == [9.0, 20.0, 31.0, 39.2]


def test_a_run_still_writing_its_metrics_is_read_up_to_its_last_whole_record(tmp_path):
    _fake_run(tmp_path / "live", seed=0, lr=1e-3, scale=1.0)
    with (tmp_path / "live" / "metrics.jsonl").open("a") as f:
        f.write('{"charts/env_steps": 11000, "charts/wa')  # the trainer mid-write
    run = load_run(tmp_path / "live")
    assert list(run.env_steps) == [1000 * i for i in range(1, 11)]


@pytest.mark.parametrize("as_sweep", [False, True])
def test_plot_cli_writes_one_png(tmp_path, as_sweep):
    sweep = tmp_path / "multirun"
    for job, (seed, lr) in enumerate(((0, 1e-3), (1, 1e-3), (0, 3e-4))):
        _fake_run(sweep / str(job), seed=seed, lr=lr, scale=1.0 + job)
    targets = [str(sweep)] if as_sweep else [str(sweep / "0"), str(sweep / "2")]
    out = tmp_path / "runs.png"
    proc = subprocess.run(
        [sys.executable, "-m", "apex_dqn.cli.plot", *targets, "--out", str(out)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    assert f"{3 if as_sweep else 2} run(s)" in proc.stdout
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    # One colour per group: runs 0 and 1 (same config but the seed) are one group, run 2 its
    # own; given only runs 0 and 2, two groups as well. Each group's lines are drawn.
    assert pixels_of(out, TAB_BLUE) > 300 and pixels_of(out, TAB_ORANGE) > 300
    assert pixels_of(out, TAB_GREEN) < 20  # no third group


def _plot_cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "apex_dqn.cli.plot", *args],
        capture_output=True,
        text=True,
        timeout=60,
        stdin=subprocess.DEVNULL,
    )


def _bad_run(tmp_path, what: str):
    """A run directory broken in one way (the path the error must name)."""
    run = tmp_path / what
    if what == "file":
        run.write_text("")
    elif what == "empty_folder":
        run.mkdir()
    elif what in ("corrupt_metrics", "no_config"):
        _fake_run(run, seed=0, lr=1e-3, scale=1.0)
        if what == "corrupt_metrics":
            (run / "metrics.jsonl").write_text('{"charts/env_steps": 1\n')
        else:
            (run / "config.yaml").unlink()
    return run


@pytest.mark.parametrize(
    ("what", "fragment"),
    [
        ("missing", "does not exist"),
        ("file", "is not a directory"),
        ("empty_folder", "holds no run"),
        ("corrupt_metrics", "cannot be read as an apex-dqn run"),
        ("no_config", "config.yaml"),
    ],
)
def test_plot_cli_bad_runs_fail_in_one_line_naming_the_path(tmp_path, what, fragment):
    run = _bad_run(tmp_path, what)  # "missing": never created
    proc = _plot_cli(str(run), "--out", str(tmp_path / "out.png"))
    fails_in_one_line(proc, fragment, repr(str(run)))
    assert not (tmp_path / "out.png").exists()


def test_plot_cli_unwritable_out_names_it(tmp_path):
    _fake_run(tmp_path / "run", seed=0, lr=1e-3, scale=1.0)
    (tmp_path / "a_file").write_text("")
    out = tmp_path / "a_file" / "runs.png"  # below a file: cannot be created
    fails_in_one_line(
        _plot_cli(str(tmp_path / "run"), "--out", str(out)),
        f"--out {str(out)!r} cannot be written",
    )


def test_plot_cli_out_without_an_image_suffix_names_it(tmp_path):
    _fake_run(tmp_path / "run", seed=0, lr=1e-3, scale=1.0)
    out = str(tmp_path / "runs")
    proc = _plot_cli(str(tmp_path / "run"), "--out", out)
    fails_in_one_line(proc, repr(out), "must end in .png, .pdf or .svg")


def test_plot_cli_without_runs_fails_clearly(tmp_path):
    fails_in_one_line(_plot_cli(str(tmp_path)), repr(str(tmp_path)), "holds no run")


def test_an_evaluation_repeating_an_earlier_value_is_kept(tmp_path):
    run = tmp_path / "r"
    run.mkdir()
    (run / "config.yaml").write_text(yaml.safe_dump({"env": {"id": "X"}, "seed": 0}))
    rows = [(1, -21.0), (1, -21.0), (2, -20.0), (3, -21.0), (3, -21.0), (4, -21.0)]
    (run / "metrics.jsonl").write_text(
        "\n".join(
            json.dumps(
                {
                    "charts/env_steps": 100 * i,
                    "charts/wall_s": float(i),
                    "eval/weights_version": version,
                    "eval/mean_return": value,
                }
            )
            for i, (version, value) in enumerate(rows)
        )
    )
    data = load_run(run)
    assert list(data.eval_return) == [-21.0, -20.0, -21.0, -21.0]
    assert list(data.eval_steps) == [0, 200, 300, 500]
