"""The Seaquest diagnosis runs side by side: best and final greedy return, return at 5 and 10
minutes, env steps, updates and the dead-unit fractions; writes summary.json beside this file.

    python docs/figures/seaquest_diag/summarize.py
"""

import json
from pathlib import Path

here = Path(__file__).resolve().parent
rows = {}
for run in sorted(p for p in here.iterdir() if (p / "summary.json").is_file()):
    records = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    evals = [
        (r["charts/wall_s"], r["eval/mean_return"]) for r in records if "eval/mean_return" in r
    ]
    summary = json.loads((run / "summary.json").read_text())
    dead = [r["losses/dead_units"] for r in records if r.get("losses/dead_units") is not None]
    dead_max = [
        r["losses/dead_units_max"] for r in records if r.get("losses/dead_units_max") is not None
    ]
    rows[run.name] = {
        "best_eval_return": summary["best_eval_return"],
        "final_eval_return": summary["final_eval_return"],
        "eval_return_at_300s": max((e for w, e in evals if w <= 300), default=None),
        "env_steps": summary["env_steps"],
        "learner_steps": summary["learner_steps"],
        "learner_updates_per_s": round(summary["learner_updates_per_s"], 1),
        "dead_units_last": dead[-1] if dead else None,
        "dead_units_max_seen": max(dead_max) if dead_max else None,
    }
out = {
    # The runs ran at 4770b39; apex_dqn/ and conf/ there are those of 5463f23.
    "commit": "4770b39",
    "command": "bash docs/figures/seaquest_diag/run.sh <variants>",
    "seed": 10,
    "seed_note": "seed 10 was used by no tuning run",
    "machine": "AMD EPYC, 2 cores, no GPU, no avx512_bf16 (learner in float32)",
    "date": "2026-12-07",
    "budget_s": 600,
    "runs": rows,
}
(here / "summary.json").write_text(json.dumps(out, indent=2) + "\n")
print(
    "| run | best | at 300 s (best so far) | final | env steps | updates | dead units (max layer) |"
)
print("| --- | ---: | ---: | ---: | ---: | ---: | ---: |")
for name, r in rows.items():
    print(
        f"| {name} | {r['best_eval_return']} | {r['eval_return_at_300s']} | "
        f"{r['final_eval_return']} | {r['env_steps']:,} | {r['learner_steps']:,} | "
        f"{r['dead_units_last']} ({r['dead_units_max_seen']}) |"
    )
