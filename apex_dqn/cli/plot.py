"""``apex-dqn-plot``: learning curves, throughput and loss of any set of runs on one figure."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from apex_dqn.files.plotting import load_run, plot_runs


def main(argv: Sequence[str] | None = None) -> None:
    """``apex-dqn-plot <run dir>... [--out PATH] [--title TEXT]``."""
    parser = argparse.ArgumentParser(
        prog="apex-dqn-plot",
        description="Plot learning curves, throughput and loss of apex-dqn runs on one figure; "
        "runs that differ only in the seed are drawn as mean and standard deviation.",
    )
    parser.add_argument("runs", nargs="+", type=Path, help="run directories (or sweep folders)")
    parser.add_argument("--out", type=Path, default=Path("apex_dqn_runs.png"), help="PNG path")
    parser.add_argument("--title", default=None)
    args = parser.parse_args(argv)
    dirs: list[Path] = []
    for given in args.runs:
        if (given / "metrics.jsonl").is_file():
            dirs.append(given)
        else:  # a multirun folder: every job directory below it
            dirs += sorted(p.parent for p in given.glob("*/metrics.jsonl"))
    if not dirs:
        print("apex-dqn-plot: error: no run directory (with metrics.jsonl) given", file=sys.stderr)
        sys.exit(2)
    runs = [load_run(d) for d in dirs]
    out = plot_runs(runs, args.out, title=args.title)
    print(f"apex-dqn-plot: {len(runs)} run(s) -> {out}")


if __name__ == "__main__":
    main()
