"""The summary of a Hydra multirun: one table of every job and one figure of their curves.

After ``apex-dqn -m ...`` the sweep directory gets ``sweep_summary.csv`` and
``sweep_summary.md`` (one row per job: its overrides and its ``summary.json``) and
``sweep_summary.png`` (``plotting.plot_runs``: jobs that differ only in the seed drawn as mean
and spread). The Hydra callback in ``cli/train.py`` calls ``write_sweep_summary`` when the multirun
ends; it can also be run by hand on a sweep directory. No Hydra import here: job overrides are
read from the ``.hydra/overrides.yaml`` Hydra leaves in each job directory.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Any

import yaml

SUMMARY_COLUMNS = (
    "solved",
    "best_eval_return",
    "final_eval_return",
    "time_to_solve_s",
    "env_steps",
    "learner_steps",
    "wall_s",
    "env_steps_per_s",
    "stop_reason",
)
CSV_FILE = "sweep_summary.csv"
MARKDOWN_FILE = "sweep_summary.md"
PLOT_FILE = "sweep_summary.png"


def job_dirs(sweep_dir: Path) -> list[Path]:
    """The job directories of a sweep (those holding a summary.json), in job order."""
    dirs = [p.parent for p in Path(sweep_dir).glob("*/summary.json")]
    return sorted(dirs, key=lambda p: (int(p.name) if p.name.isdigit() else 1 << 62, p.name))


def _overrides(job: Path) -> list[str]:
    path = job / ".hydra" / "overrides.yaml"
    return list(yaml.safe_load(path.read_text()) or []) if path.is_file() else []


def sweep_rows(sweep_dir: Path) -> tuple[list[str], list[dict[str, Any]], dict[str, str]]:
    """The swept override keys (values differ between jobs), one row per job (job, swept
    values, summary columns), and the overrides every job shares."""
    jobs = job_dirs(sweep_dir)
    overrides = [dict(o.split("=", 1) for o in _overrides(j) if "=" in o) for j in jobs]
    every = sorted({k for o in overrides for k in o})
    keys = [k for k in every if len({o.get(k) for o in overrides}) > 1]
    common = {k: overrides[0][k] for k in every if k not in keys and k in overrides[0]}
    rows = []
    for job, values in zip(jobs, overrides, strict=True):
        summary = json.loads((job / "summary.json").read_text())
        row: dict[str, Any] = {"job": job.name}
        row.update({k: values.get(k, "") for k in keys})
        row.update({c: summary.get(c) for c in SUMMARY_COLUMNS})
        rows.append(row)
    return keys, rows, common


def _cell(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:,.1f}" if abs(value) >= 100 else f"{value:.3g}"
    if isinstance(value, int) and not isinstance(value, bool):
        return f"{value:,d}"
    return str(value)


def write_sweep_summary(sweep_dir: str | Path, *, plot: bool = True) -> list[Path]:
    """Write the CSV, markdown and (with ``plot``) PNG summaries; return their paths.

    Raises:
        FileNotFoundError: if no job of the sweep left a summary.json.
    """
    sweep_dir = Path(sweep_dir)
    keys, rows, common = sweep_rows(sweep_dir)
    if not rows:
        raise FileNotFoundError(f"no job directory with summary.json under {sweep_dir}")
    columns = ["job", *keys, *SUMMARY_COLUMNS]
    with (sweep_dir / CSV_FILE).open("w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=columns)
        writer.writeheader()
        writer.writerows(rows)
    lines = [
        f"# Sweep {sweep_dir.name}: {len(rows)} jobs",
        "",
        "Overrides of every job: " + (", ".join(f"`{k}={v}`" for k, v in common.items()) or "none"),
        "",
        "| " + " | ".join(columns) + " |",
        "| " + " | ".join("---" for _ in columns) + " |",
        *("| " + " | ".join(_cell(row[c]) for c in columns) + " |" for row in rows),
        "",
    ]
    (sweep_dir / MARKDOWN_FILE).write_text("\n".join(lines))
    written = [sweep_dir / CSV_FILE, sweep_dir / MARKDOWN_FILE]
    if plot:
        from apex_dqn.files.plotting import load_run, plot_runs

        runs = [load_run(job) for job in job_dirs(sweep_dir) if (job / "metrics.jsonl").is_file()]
        if runs:
            title = f"apex-dqn sweep {sweep_dir.name}: " + (", ".join(keys) or "one setting")
            written.append(plot_runs(runs, sweep_dir / PLOT_FILE, title=title))
    return written
