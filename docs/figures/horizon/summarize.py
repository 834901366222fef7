"""The horizon runs side by side (``run.sh``, and Seaquest's from docs/figures/seaquest_diag/):
per game, the env=minatar defaults (n_step 3, gamma 0.99) against longer horizons (n_step 5
and/or gamma 0.995), one seed (10).

The machine was not always idle (tests ran beside some runs at the lowest priority, and took up
to 40% of the learner's rate), so the runs are compared at equal learner updates as well as at
equal time: the best greedy return reached within 10k, 20k and 30k updates, and the mean of the
last five evaluations (where a run plateaus or collapses). Writes summary.json and prints the
table.

    python docs/figures/horizon/summarize.py > docs/figures/horizon/table.md
"""

from __future__ import annotations

import json
import statistics
from pathlib import Path

HERE = Path(__file__).resolve().parent
SEAQUEST = HERE.parent / "seaquest_diag"
VARIANTS = ("defaults", "n_step5_gamma995", "n_step3_gamma995", "n_step5_gamma99")
BUDGETS = (10_000, 20_000, 30_000)


def run_figures(run: Path) -> dict:
    """The figures of one run directory (its summary.json and metrics.jsonl)."""
    summary = json.loads((run / "summary.json").read_text())
    records = [json.loads(x) for x in (run / "metrics.jsonl").read_text().splitlines() if x]
    steps = [(r["charts/env_steps"], r["charts/learner_steps"]) for r in records]

    def updates_at(env_steps: int) -> int:
        return max((u for e, u in steps if e <= env_steps), default=0)

    points = [(updates_at(e["env_steps"]), e["mean_return"]) for e in summary["evals"]]
    return {
        "best_return": summary["best_eval_return"],
        "final_return": summary["final_eval_return"],
        "last5_mean": round(statistics.mean(r for _, r in points[-5:]), 2),
        **{
            f"best_within_{b // 1000}k_updates": max((r for u, r in points if u <= b), default=None)
            for b in BUDGETS
        },
        "env_steps": summary["env_steps"],
        "learner_steps": summary["learner_steps"],
        "learner_updates_per_s": round(summary["learner_updates_per_s"], 1),
    }


def main() -> None:
    games: dict[str, dict] = {}
    for game_dir in sorted(p for p in HERE.iterdir() if p.is_dir()):
        games[game_dir.name] = {
            v: run_figures(game_dir / v) for v in VARIANTS if (game_dir / v).is_dir()
        }
    # Seaquest's defaults and n_step 5 + gamma 0.995 are the diagnosis's runs.
    seaquest = {v: run_figures(SEAQUEST / v) for v in VARIANTS if (SEAQUEST / v).is_dir()}
    games["Seaquest"] = {**seaquest, **games.get("Seaquest", {})}
    out = {
        "provenance": {
            # Breakout's defaults ran at 15d51df, the rest at a1ca7da; Seaquest's at 4770b39.
            # apex_dqn/ differs between them only in how a Hydra multirun counts time.
            "commit": "a1ca7da",
            "command": "bash docs/figures/horizon/run.sh Game:variant ... (order: progress.txt)",
            "machine": {"cpu": "AMD EPYC", "cores": 2, "avx512_bf16": False},
            "date": "2026-12-07",
        },
        "seed": 10,
        "seed_note": "seed 10 was used by no tuning run and is not one of the suite's seeds",
        "budget_s": 600,
        "games": games,
    }
    (HERE / "summary.json").write_text(json.dumps(out, indent=2) + "\n")
    print(
        "| game | variant | best within 10k / 20k / 30k updates | best | mean of last 5 | "
        "final | updates (per s) | env steps |"
    )
    print("| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: |")
    for game, runs in games.items():
        for variant, r in runs.items():
            within = " / ".join(
                "-" if r[f"best_within_{b // 1000}k_updates"] is None
                else f"{r[f'best_within_{b // 1000}k_updates']:.1f}"
                for b in BUDGETS
            )  # fmt: skip
            print(
                f"| {game} | {variant} | {within} | {r['best_return']:.1f} | "
                f"{r['last5_mean']:.1f} | {r['final_return']:.1f} | "
                f"{r['learner_steps']:,} ({r['learner_updates_per_s']}) | {r['env_steps']:,} |"
            )


if __name__ == "__main__":
    main()
