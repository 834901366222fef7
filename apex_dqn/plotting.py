"""The learning-curve plot: greedy eval return against env steps and against wall-clock seconds.

matplotlib is imported inside the function (with the non-interactive Agg backend), so a run pays
for it only when it writes the plot.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path


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
        (ax_time, wall_s, "wall-clock seconds"),
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
    path = Path(path)
    tmp = path.with_name(f".{path.stem}.tmp{path.suffix}")
    fig.savefig(tmp, dpi=100)
    plt.close(fig)
    tmp.replace(path)
    return path
