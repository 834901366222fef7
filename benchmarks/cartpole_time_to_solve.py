"""Time to solve CartPole-v1 with the default training command, over several seeds.

For every seed it runs ``python -m apex_dqn seed=<k>`` (plus any extra overrides) as a fresh
process, exactly as a user would, and reports ``time_to_solve_s`` (process start to the first
greedy evaluation at or above the target), the whole command's wall time from start to exit, env
steps at solve and env steps/s; then the median and the worst.

    python benchmarks/cartpole_time_to_solve.py --seeds 5 --json results.json [overrides ...]
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from provenance import provenance


def run_seed(seed: int, overrides: list[str], workdir: Path, timeout: float) -> dict:
    """One training command for ``seed``; its figures."""
    out = workdir / f"seed{seed}"
    cmd = [sys.executable, "-m", "apex_dqn", f"seed={seed}", f"output_dir={out}", *overrides]
    start = time.perf_counter()
    proc = subprocess.run(
        cmd, capture_output=True, text=True, timeout=timeout, stdin=subprocess.DEVNULL
    )
    wall = time.perf_counter() - start
    if proc.returncode != 0:
        sys.stderr.write(proc.stderr[-3000:])
        return {
            "seed": seed,
            "solved": False,
            "time_to_solve_s": None,
            "wall_s": wall,
            "env_steps_at_solve": None,
            "env_steps_per_s": None,
            "error": proc.returncode,
        }
    summary = json.loads((out / "summary.json").read_text())
    return {
        "seed": seed,
        "solved": summary["solved"],
        "time_to_solve_s": summary["time_to_solve_s"],
        "wall_s": round(wall, 2),
        "env_steps_at_solve": summary["env_steps_at_solve"],
        "env_steps_per_s": round(summary["env_steps_per_s"]),
        "learner_steps": summary["learner_steps"],
    }


def markdown(rows: list[dict], median_wall: float, worst_wall: float) -> str:
    """The results as a markdown table."""
    lines = [
        "| seed | solved | time to solve (s) | command wall (s) | env steps at solve "
        "| env steps/s |",
        "| ---: | :---: | ---: | ---: | ---: | ---: |",
    ]
    for r in rows:
        tts = "-" if r["time_to_solve_s"] is None else f"{r['time_to_solve_s']:.1f}"
        steps = "-" if r["env_steps_at_solve"] is None else f"{r['env_steps_at_solve']:,}"
        eps = "-" if r["env_steps_per_s"] is None else f"{r['env_steps_per_s']:,}"
        lines.append(
            f"| {r['seed']} | {'yes' if r['solved'] else 'NO'} | {tts} | {r['wall_s']:.1f} | "
            f"{steps} | {eps} |"
        )
    lines.append(f"| **median** | | | **{median_wall:.1f}** | | |")
    lines.append(f"| **worst** | | | **{worst_wall:.1f}** | | |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=5, help="seeds 0..N-1 (default 5)")
    parser.add_argument("--json", type=Path, default=None, help="also write figures here")
    parser.add_argument("--timeout", type=float, default=300.0, help="per-seed limit (s)")
    parser.add_argument("overrides", nargs="*", help="extra Hydra overrides for every run")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="apex-dqn-bench-") as tmp:
        rows = []
        for seed in range(args.seeds):
            rows.append(run_seed(seed, args.overrides, Path(tmp), args.timeout))
            print(f"seed {seed}: {rows[-1]}", file=sys.stderr, flush=True)
    walls = [r["wall_s"] for r in rows]
    median_wall, worst_wall = statistics.median(walls), max(walls)
    print(markdown(rows, median_wall, worst_wall))
    solved = sum(r["solved"] for r in rows)
    print(
        f"\nsolved {solved}/{len(rows)}; median command wall {median_wall:.1f} s, "
        f"worst {worst_wall:.1f} s"
    )
    if args.json:
        args.json.write_text(
            json.dumps(
                {
                    "seeds": rows,
                    "median_wall_s": median_wall,
                    "worst_wall_s": worst_wall,
                    "overrides": args.overrides,
                    "provenance": provenance(),
                },
                indent=2,
            )
        )


if __name__ == "__main__":
    main()
