"""Medians of the scale benchmark's before/after rounds (run.sh) per point, as JSON and a table.

python docs/figures/scale/combine.py docs/figures/scale
"""

from __future__ import annotations

import json
import statistics
import sys
from pathlib import Path

FIGURES = {
    "actor_calls_per_s": lambda p: p["actor_calls_per_s"],
    "driver_cpu_s_per_s": lambda p: p["driver_cpu_s_per_s"],
    "driver_cpu_ms_per_call": lambda p: p["driver_cpu_ms_per_call"],
    "driver_latency_ms_p50": lambda p: p["driver_latency_ms"]["p50"],
    "driver_latency_ms_p95": lambda p: p["driver_latency_ms"]["p95"],
    "policy_lag_p95": lambda p: p["policy_lag_updates"]["p95"],
    "weights_age_s_p50": lambda p: p["weights_age_s"]["p50"],
    "weights_age_s_p95": lambda p: p["weights_age_s"]["p95"],
    "accepted_per_s": lambda p: p["accepted_per_s"],
    "learner_samples_per_s": lambda p: p["learner_samples_per_s"],
    "driver_rss_mb_end": lambda p: p["end"]["driver_rss_mb"],
}


def main(folder: Path) -> None:
    rounds = sorted(folder.glob("before_*.json")) + sorted(folder.glob("after_*.json"))
    out: dict = {"rounds": [r.stem for r in rounds], "points": {}}
    for path in rounds:
        side = path.stem.split("_")[0]
        for p in json.loads(path.read_text())["points"]:
            key = f"{p['actors']}x{p['shards']}"
            point = out["points"].setdefault(key, {"before": {}, "after": {}})
            for name, get in FIGURES.items():
                point[side].setdefault(name, []).append(get(p))
    for point in out["points"].values():
        for side in ("before", "after"):
            point[side] = {
                k: {"rounds": v, "median": statistics.median(v)} for k, v in point[side].items()
            }
    (folder / "summary.json").write_text(json.dumps(out, indent=2) + "\n")
    names = [
        "actor_calls_per_s",
        "driver_cpu_ms_per_call",
        "driver_latency_ms_p95",
        "weights_age_s_p95",
        "accepted_per_s",
        "learner_samples_per_s",
    ]
    print("| point | " + " | ".join(names) + " |")
    print("|---" * (len(names) + 1) + "|")
    for key, point in out["points"].items():
        for side in ("before", "after"):
            cells = [f"{point[side][n]['median']:.3g}" for n in names]
            print(f"| {key} {side} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main(Path(sys.argv[1]))
