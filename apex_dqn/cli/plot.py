"""``apex-dqn-plot``: learning curves, throughput and loss of any set of runs on one figure."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import NoReturn

import yaml

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
        if not given.exists():
            _fail(f"{str(given)!r} does not exist: give run directories or sweep folders")
        if not given.is_dir():
            _fail(f"{str(given)!r} is not a directory: give run directories or sweep folders")
        if (given / "metrics.jsonl").is_file():
            dirs.append(given)
        else:  # a multirun folder: every job directory below it
            jobs = sorted(p.parent for p in given.glob("*/metrics.jsonl"))
            if not jobs:
                _fail(f"{str(given)!r} holds no run: no metrics.jsonl in it or one level below")
            dirs += jobs
    if args.out.suffix.lower() not in (".png", ".pdf", ".svg"):
        _fail(f"--out {str(args.out)!r} must end in .png, .pdf or .svg")
    runs = []
    for run_dir in dirs:
        try:
            runs.append(load_run(run_dir))
        except (OSError, ValueError, AttributeError, TypeError, yaml.YAMLError) as exc:
            if isinstance(exc, OSError):
                reason = f"{Path(exc.filename or '').name or 'a file'}: {exc.strerror}"
            else:
                reason = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
            _fail(f"{str(run_dir)!r} cannot be read as an apex-dqn run: {reason}")
    try:
        out = plot_runs(runs, args.out, title=args.title)
    except OSError as exc:
        _fail(f"--out {str(args.out)!r} cannot be written: {exc.strerror}")
    print(f"apex-dqn-plot: {len(runs)} run(s) -> {out}")


def _fail(message: str) -> NoReturn:
    """One line on stderr, exit code 2: the standard of every apex-dqn command."""
    print(f"apex-dqn-plot: error: {message}", file=sys.stderr, flush=True)
    sys.exit(2)


if __name__ == "__main__":
    main()
