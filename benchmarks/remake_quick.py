"""Remake the quick headline figures on the current code, one benchmark after the other, each
writing its JSON under docs/figures/ (with its provenance record), then check the registry.

About 30 minutes on a 2-core machine, which must be otherwise idle:

- CartPole-v1 against Stable-Baselines3 (6 seeds each, alternating): ``cartpole_vs_sb3.json``;
- start-up against its floor (5 repeats): ``startup_warm.json``;
- the replay against cpprb: ``replay.json``;
- MinAtar Breakout against SB3 (apex-dqn seeds 100-101 stopping at a confirmed 10, SB3 seed 100
  for its whole 10 minutes): ``learning_breakout.json`` and ``.png``.

Then ``figures.py check`` lists every quote of the README and docs/ that no longer matches its
JSON: the text to update (``figures.py requote`` updates those it can, and lists the rest). The
long figures say how to remake them in their own pages (the MinAtar suite:
``docs/figures/minatar_suite/run.sh``; Pong: ``benchmarks/pong.py``; scale, soak:
docs/benchmarks.md).

    python benchmarks/remake_quick.py            # everything
    python benchmarks/remake_quick.py --dry-run  # the commands only
    python benchmarks/remake_quick.py --only startup,replay
"""

from __future__ import annotations

import argparse
import importlib.util
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
FIGURES = "docs/figures"

# name: the command, run from the repository root.
QUICK: dict[str, list[str]] = {
    "cartpole": ["benchmarks/cartpole_vs_sb3.py", "--seeds", "6",
                 "--json", f"{FIGURES}/cartpole_vs_sb3.json"],
    "startup": ["benchmarks/startup.py", "--repeats", "5",
                "--json", f"{FIGURES}/startup_warm.json"],
    "replay": ["benchmarks/replay_bench.py", "--json", f"{FIGURES}/replay.json"],
    "minatar": ["benchmarks/learning.py", "Breakout", "--budget-s", "600", "--seeds", "2",
                "--first-seed", "100", "--sb3-seeds", "1", "--apex-target", "10",
                "--seed-note", "seeds 100-101: no tuning run used them",
                "--json", f"{FIGURES}/learning_breakout.json",
                "--png", f"{FIGURES}/learning_breakout.png"],
}  # fmt: skip

# The peers each figure is measured beside (pip install -e '.[bench]'). Without one, the replay
# benchmark would write a table with no peer and the learning benchmarks would stop midway, so
# the whole remake refuses to start instead.
PEERS: dict[str, list[str]] = {
    "cartpole": ["stable_baselines3"],
    "startup": [],
    "replay": ["cpprb"],
    "minatar": ["stable_baselines3", "minatar"],
}


def missing_peers(names: list[str]) -> list[str]:
    """The peer modules the named figures need that cannot be imported here, sorted."""
    wanted = {module for name in names for module in PEERS[name]}
    return sorted(m for m in wanted if importlib.util.find_spec(m) is None)


def commands(only: list[str] | None = None) -> list[list[str]]:
    """The benchmark commands to run (all, or those named in ``only``)."""
    names = only or list(QUICK)
    unknown = sorted(set(names) - set(QUICK))
    if unknown:
        raise ValueError(f"unknown figures {unknown}; known: {', '.join(QUICK)}")
    return [[sys.executable, *QUICK[name]] for name in names]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dry-run", action="store_true", help="print the commands only")
    parser.add_argument("--only", default="", help=f"comma-separated: {', '.join(QUICK)}")
    args = parser.parse_args(argv)
    names = [x for x in args.only.split(",") if x] or list(QUICK)
    try:
        todo = commands(names)
    except ValueError as exc:
        parser.error(str(exc))
    missing = missing_peers(names)
    if missing and not args.dry_run:
        parser.error(
            f"peers not installed: {', '.join(missing)}; "
            "install them with: pip install -e '.[bench]'"
        )
    check = [sys.executable, "benchmarks/figures.py", "check"]
    for cmd in todo:
        print("$ " + " ".join(["python", *cmd[1:]]), flush=True)
        if not args.dry_run:
            subprocess.run(cmd, cwd=ROOT, check=True, stdin=subprocess.DEVNULL)
    print("$ " + " ".join(["python", *check[1:]]), flush=True)
    if args.dry_run:
        return 0
    return subprocess.run(check, cwd=ROOT).returncode


if __name__ == "__main__":
    sys.exit(main())
