"""Plots of runs: learning curves, throughput and loss, for one run or a sweep of runs.

This module owns the figures. ``plot_learning_curve`` draws one run's greedy eval return
against env steps and wall-clock seconds (``learning_curve.png``). ``plot_runs`` draws any number
of runs read from their directories (``config.yaml`` and ``metrics.jsonl``) on one 2x2 figure:
eval return against env steps and against wall-clock, throughput over time, and loss. Runs whose
configs differ only in the seed form one group, drawn as the mean over seeds with a band of one
standard deviation; groups are labelled by the config values that tell them apart. The run writes
``training.png`` at its end; ``apex-dqn-plot <run dir>...`` draws any set of runs on demand.
matplotlib is imported inside the functions (Agg backend), so a run pays for it only when it
plots.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from apex_dqn.core.metrics import (
    ENV_STEPS,
    ENV_STEPS_PER_S,
    EVAL_NEW,
    EVAL_RETURN,
    EVAL_VERSION,
    LEARNER_UPDATES_PER_S,
    LOSS,
    WALL_S,
    read_jsonl,
)

# Config keys that never tell groups apart (a sweep over seeds is one group).
IGNORED_KEYS = ("seed", "output_dir", "resume", "logging")
MAX_LABEL_KEYS = 3  # more differing keys than this: label runs by env id and directory


@dataclass
class RunData:
    """What the plots need of one run directory."""

    path: Path
    config: dict[str, Any]
    env_steps: np.ndarray
    wall_s: np.ndarray
    env_steps_per_s: np.ndarray
    updates_per_s: np.ndarray
    loss_steps: np.ndarray
    loss: np.ndarray
    eval_steps: np.ndarray
    eval_wall_s: np.ndarray
    eval_return: np.ndarray
    label: str = ""
    flat: dict[str, Any] = field(default_factory=dict)


def _flatten(tree: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    flat: dict[str, Any] = {}
    for key, value in tree.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            flat.update(_flatten(value, f"{name}."))
        else:
            flat[name] = value
    return flat


def load_run(run_dir: str | Path) -> RunData:
    """Read a run directory's config.yaml and metrics.jsonl.

    Raises:
        FileNotFoundError: if either file is missing.
    """
    path = Path(run_dir)
    config = yaml.safe_load((path / "config.yaml").read_text()) or {}
    records = read_jsonl(path / "metrics.jsonl")  # the run may still be writing it

    def column(key: str, rows: Sequence[dict] = records) -> np.ndarray:
        return np.array([r.get(key) for r in rows], dtype=float)

    losses = [r for r in records if r.get(LOSS) is not None]
    eval_steps, eval_wall_s, eval_return = _evaluations(records)
    return RunData(
        path=path,
        config=config,
        env_steps=column(ENV_STEPS),
        wall_s=column(WALL_S),
        env_steps_per_s=column(ENV_STEPS_PER_S),
        updates_per_s=column(LEARNER_UPDATES_PER_S),
        loss_steps=column(ENV_STEPS, losses),
        loss=column(LOSS, losses),
        eval_steps=eval_steps,
        eval_wall_s=eval_wall_s,
        eval_return=eval_return,
        flat=_flatten(config),
    )


def _evaluations(records: Sequence[dict]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Env steps, wall seconds and mean return of every greedy evaluation of a run.

    Records list each evaluation once in ``eval/new``, also several between two records; a
    resumed run lists those after its checkpoint again with the same index: the resumed run's
    entries replace the first run's from that index on (also those it never reached again).
    Records written without ``eval/new`` repeat the latest evaluation until the next: then the
    first record of each is kept (a new weights version, or a new value where records carry no
    version), missing any evaluation that two records straddle.
    """
    listed: dict[int, dict] = {}
    for r in records:
        for e in r.get(EVAL_NEW) or []:
            index = e.get("index")
            if not isinstance(index, int):
                continue  # not an entry this project writes
            if index in listed:  # a resumed run: what the dead run did after this is undone
                listed = {i: v for i, v in listed.items() if i < index}
            listed[index] = e
    if listed:
        points = [listed[i] for i in sorted(listed)]
        keys = ("env_steps", "wall_s", "mean_return")
    else:
        points, previous = [], None
        for r in records:
            key = (r.get(EVAL_VERSION), r.get(EVAL_RETURN))
            if r.get(EVAL_RETURN) is not None and key != previous:
                points.append(r)
            previous = key
        keys = (ENV_STEPS, WALL_S, EVAL_RETURN)
    steps, wall, returns = (np.array([p.get(k) for p in points], dtype=float) for k in keys)
    return steps, wall, returns


def group_runs(runs: Sequence[RunData]) -> dict[str, list[RunData]]:
    """Runs grouped by their configs without the seed; keys label the groups by the config
    values that differ between groups (the env id when nothing else does)."""
    keys = sorted({k for r in runs for k in r.flat})
    varying = [
        k
        for k in keys
        if not k.startswith(IGNORED_KEYS) and len({repr(r.flat.get(k)) for r in runs}) > 1
    ]
    groups: dict[str, list[RunData]] = {}
    for run in runs:
        parts = [f"{k}={run.flat.get(k)}" for k in varying]
        if len(parts) > MAX_LABEL_KEYS:  # unrelated runs: name them by env and directory
            parts = [f"{run.flat.get('env.id', '?')} ({run.path.name})"]
        label = ", ".join(parts) or str(run.flat.get("env.id", run.path.name))
        run.label = label
        groups.setdefault(label, []).append(run)
    return groups


def mean_and_spread(
    xs: Sequence[np.ndarray], ys: Sequence[np.ndarray], points: int = 100
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Curves interpolated onto a common grid over the x range all of them cover; returns the
    grid, the mean and the standard deviation over curves at each grid point."""
    lo = max(float(x[0]) for x in xs)
    hi = min(float(x[-1]) for x in xs)
    grid = np.linspace(lo, hi, points) if hi > lo else np.array([lo])
    stacked = np.stack([np.interp(grid, x, y) for x, y in zip(xs, ys, strict=True)])
    return grid, stacked.mean(axis=0), stacked.std(axis=0)


def _draw(ax: Any, runs: list[RunData], x: str, y: str, label: str, color: Any) -> None:
    """One group on one axis: the line of a single run, or mean and a std band over seeds."""
    curves = [(getattr(r, x), getattr(r, y)) for r in runs]
    curves = [(cx, cy) for cx, cy in curves if len(cx) > 0 and np.isfinite(cy).all()]
    if not curves:
        return
    if len(curves) == 1:
        ax.plot(*curves[0], color=color, linewidth=1.5, label=label)
        return
    grid, mean, std = mean_and_spread([c[0] for c in curves], [c[1] for c in curves])
    ax.plot(grid, mean, color=color, linewidth=1.8, label=f"{label} (mean of {len(curves)})")
    ax.fill_between(grid, mean - std, mean + std, color=color, alpha=0.2)


def plot_runs(runs: Sequence[RunData], path: str | Path, title: str | None = None) -> Path:
    """The 2x2 figure of ``runs`` (see module docstring) as a PNG at ``path``."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    groups = group_runs(runs)
    fig, axes = plt.subplots(2, 2, figsize=(13, 8.5))
    (ax_steps, ax_time), (ax_rate, ax_loss) = axes
    colors = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    for i, (label, members) in enumerate(groups.items()):
        color = colors[i % len(colors)]
        _draw(ax_steps, members, "eval_steps", "eval_return", label, color)
        _draw(ax_time, members, "eval_wall_s", "eval_return", label, color)
        _draw(ax_rate, members, "wall_s", "env_steps_per_s", label, color)
        _draw(ax_loss, members, "loss_steps", "loss", label, color)
    ax_twin = ax_rate.twinx()
    for i, (label, members) in enumerate(groups.items()):
        _draw(ax_twin, members, "wall_s", "updates_per_s", label, colors[i % len(colors)])
    for line in ax_twin.get_lines():
        line.set_linestyle("--")
    ax_steps.set(xlabel="environment steps", ylabel="greedy eval return (mean over episodes)")
    ax_steps.set_title("Learning curve (env steps)")
    ax_time.set(xlabel="wall-clock time (s)", ylabel="greedy eval return (mean over episodes)")
    ax_time.set_title("Learning curve (wall-clock)")
    ax_rate.set(xlabel="wall-clock time (s)", ylabel="env steps per second (solid)")
    ax_twin.set_ylabel("learner updates per second (dashed)")
    ax_rate.set_title("Throughput")
    ax_loss.set(xlabel="environment steps", ylabel="TD loss (importance-weighted Huber)")
    ax_loss.set_title("Loss")
    if len(ax_loss.get_lines()) and all(
        np.all(line.get_ydata() > 0) for line in ax_loss.get_lines()
    ):
        ax_loss.set_yscale("log")
    for ax in (ax_steps, ax_time, ax_rate, ax_loss):
        ax.grid(alpha=0.3)
    # One legend for the figure: a colour per group (bands: one std over seeds).
    handles: dict[str, Any] = {}
    for ax in (ax_steps, ax_rate, ax_loss):
        for line in ax.get_lines():
            handles.setdefault(line.get_label(), line)
    if handles:
        fig.legend(
            handles=list(handles.values()),
            labels=list(handles),
            loc="lower center",
            ncol=min(3, len(handles)),
            fontsize=8,
            frameon=False,
        )
    runs_text = f"{len(runs)} run" + ("s" if len(runs) != 1 else "")
    fig.suptitle(title or f"apex-dqn: {runs_text} in {len(groups)} group(s)")
    rows = -(-len(handles) // 3) if handles else 0
    fig.tight_layout(rect=(0, 0.03 * rows + 0.02, 1, 0.97))
    return _save(fig, Path(path))


def _save(fig: Any, path: Path) -> Path:
    """Write the figure atomically (a reader never sees half a PNG) and close it."""
    import matplotlib.pyplot as plt

    from apex_dqn.files.atomic import write_atomic

    try:
        return write_atomic(path, lambda f: fig.savefig(f, format=path.suffix[1:], dpi=100))
    finally:
        plt.close(fig)


def plot_learning_curve(
    *,
    env_steps: Sequence[int],
    wall_s: Sequence[float],
    returns: Sequence[float],
    path: Path,
    title: str,
    target: float | None = None,
) -> Path:
    """Write a two-panel PNG of eval return vs env steps and vs seconds; return its path."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (ax_steps, ax_time) = plt.subplots(1, 2, figsize=(11, 4), sharey=True)
    for ax, xs, label in (
        (ax_steps, env_steps, "environment steps"),
        (ax_time, wall_s, "wall-clock time (s)"),
    ):
        ax.plot(xs, returns, marker="o", markersize=3, linewidth=1.5, label="greedy eval return")
        if target is not None:
            ax.axhline(target, color="tab:green", linestyle="--", linewidth=1, label="target")
        ax.set_xlabel(label)
        ax.grid(alpha=0.3)
    ax_steps.set_ylabel("mean episode return")
    ax_steps.legend(loc="lower right")
    fig.suptitle(title)
    fig.tight_layout()
    return _save(fig, Path(path))
