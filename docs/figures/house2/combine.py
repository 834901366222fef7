"""Combine the rounds of run.sh (in this folder) into summary.json: medians before and after.

python docs/figures/house2/combine.py docs/figures/house2
"""

import json
import statistics
import subprocess
import sys
from pathlib import Path

folder = Path(sys.argv[1])
cpu = next(
    line.split(":", 1)[1].strip()
    for line in Path("/proc/cpuinfo").read_text().splitlines()
    if line.startswith("model name")
)
summary: dict = {
    "issue": 24,
    "before_commit": "7bb606a",
    "after_commit": subprocess.run(
        ["git", "-C", "/tmp/after", "rev-parse", "--short", "HEAD"],
        capture_output=True,
        text=True,
    ).stdout.strip(),
    "commands": {
        "cartpole": "PYTHONPATH=<tree> python <tree>/benchmarks/cartpole_time_to_solve.py "
        "--seeds 3 --json cartpole_<round>.json",
        "pong": "PYTHONPATH=<tree> python <tree>/benchmarks/throughput.py --actors 2 "
        "--seconds 90 --raw-seconds 3 --configs defaults --json pong_<round>.json",
        "script": "docs/figures/house2/run.sh",
    },
    "machine": {
        "cpu": cpu,
        "cores": 2,
        "avx512_bf16": "avx512_bf16" in Path("/proc/cpuinfo").read_text(),
    },
    "order": {"cartpole": "A1 B1 B2 A2", "pong": "A1 B1 B2 A2 B3 A3 A4 B4"},
}
for side, letter in (("before", "A"), ("after", "B")):
    walls, solves, solved, runs = [], [], 0, 0
    for path in sorted(folder.glob(f"cartpole_{letter}*.json")):
        for seed in json.loads(path.read_text())["seeds"]:
            runs += 1
            solved += bool(seed["solved"])
            walls.append(seed["wall_s"])
            if seed["time_to_solve_s"] is not None:
                solves.append(seed["time_to_solve_s"])
    updates, steps = [], []
    for path in sorted(folder.glob(f"pong_{letter}*.json")):
        run = json.loads(path.read_text())["runs"][0]
        updates.append(run["learner_updates_per_s"])
        steps.append(run["env_steps_per_s"])
    summary[side] = {
        "cartpole_command_wall_s": walls,
        "cartpole_time_to_solve_s": solves,
        "cartpole_solved": solved,
        "cartpole_runs": runs,
        "cartpole_median_wall_s": statistics.median(walls),
        "cartpole_median_time_to_solve_s": statistics.median(solves),
        "pong_learner_updates_per_s": updates,
        "pong_env_steps_per_s": steps,
        "pong_median_learner_updates_per_s": statistics.median(updates),
        "pong_median_env_steps_per_s": statistics.median(steps),
    }
(folder / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
print(json.dumps({k: summary[k] for k in ("before", "after")}, indent=1))
