"""Pong at 1 against 2 samples per inserted transition, at equal learner updates.

Reads this folder's run (``actors.min_replay_ratio=1``, at 7b5dd92) and docs/pong_2cores/ (2,
at 5a1c5b5) and sets, every 1,000 updates, the actors' training returns (the mean over the
reports within 500 updates) and the greedy evaluations beside each other; writes compare.json.

    python docs/figures/pong_replay_ratio_1/compare.py
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[2]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from provenance import provenance  # noqa: E402

from apex_dqn.core.metrics import read_jsonl  # noqa: E402

RUNS = {"ratio 1": HERE / "metrics.jsonl", "ratio 2": ROOT / "docs/pong_2cores/metrics.jsonl"}


def mean_near(records: list[dict[str, Any]], updates: int, key: str) -> float | None:
    """Mean of ``key`` over the reports within 500 updates of ``updates``."""
    values = [
        r[key]
        for r in records
        if abs(r["charts/learner_steps"] - updates) <= 500 and r.get(key) is not None
    ]
    return round(sum(values) / len(values), 2) if values else None


def main() -> None:
    records = {name: read_jsonl(path) for name, path in RUNS.items()}
    last = min(max(r["charts/learner_steps"] for r in rs) for rs in records.values())
    points = []
    for updates in range(1_000, last - 499, 1_000):
        point: dict[str, Any] = {"updates": updates}
        for name, rs in records.items():
            point[name] = {
                "training_return": mean_near(rs, updates, "charts/episode_return"),
                "eval_return": mean_near(rs, updates, "eval/mean_return"),
                "env_steps": mean_near(rs, updates, "charts/env_steps"),
            }
        points.append(point)
    out = {"runs": {k: str(v.relative_to(ROOT)) for k, v in RUNS.items()}, "points": points}
    out["provenance"] = provenance()
    (HERE / "compare.json").write_text(json.dumps(out, indent=1) + "\n")
    print("| updates | ratio 1: training / eval return, env steps | ratio 2: the same |")
    print("| ---: | ---: | ---: |")
    for p in points:
        cells = [
            f"{p[n]['training_return']} / {p[n]['eval_return']}, {p[n]['env_steps']:,.0f}"
            for n in RUNS
        ]
        print(f"| {p['updates']:,} | {cells[0]} | {cells[1]} |")


if __name__ == "__main__":
    main()
