"""Adam's epsilon against the gradient scale, per parameter tensor, from a run's checkpoint.

Adam divides each step by sqrt(v_hat) + eps (v_hat: the bias-corrected running mean of squared
gradients). Where sqrt(v_hat) is well below eps, the step shrinks in proportion and the tensor
learns at a fraction of Adam's rate. For each tensor of the online network this prints its size,
the median sqrt(v_hat), and the share of its entries with sqrt(v_hat) < eps; ``--json`` writes
the same figures.

    python benchmarks/adam_scale.py outputs/<run>/checkpoint.pt --json docs/figures/adam.json
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import torch
from provenance import provenance


def adam_scale(path: Path) -> dict:
    """Per-tensor figures of the checkpoint at ``path`` (see module docstring)."""
    state = torch.load(path, map_location="cpu", weights_only=True)
    learner = state["learner"]
    optimizer = learner["optimizer"]
    eps = float(optimizer["param_groups"][0]["eps"])
    betas = optimizer["param_groups"][0]["betas"]
    names = list(learner["online"].keys())
    tensors = []
    total = below = 0
    for index, entry in sorted(optimizer["state"].items()):
        v = entry["exp_avg_sq"]
        scale = (v / (1 - betas[1] ** float(entry["step"]))).sqrt()
        share = float((scale < eps).float().mean())
        tensors.append(
            {
                "name": names[int(index)],
                "shape": list(v.shape),
                "numel": v.numel(),
                "median_sqrt_v": float(scale.median()),
                "share_below_eps": share,
            }
        )
        total += v.numel()
        below += int((scale < eps).sum())
    return {
        "checkpoint": str(path),
        "learner_steps": int(learner["learner_steps"]),
        "adam_eps": eps,
        "share_of_weights_below_eps": below / total,
        "tensors": tensors,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("checkpoints", type=Path, nargs="+")
    parser.add_argument("--json", type=Path, help="write the figures here")
    args = parser.parse_args()
    results = [adam_scale(path) for path in args.checkpoints]
    for r in results:
        print(f"\n{r['checkpoint']}: update {r['learner_steps']:,}, Adam eps {r['adam_eps']:g}, "
              f"{r['share_of_weights_below_eps']:.1%} of the weights below eps")  # fmt: skip
        print("| tensor | entries | median sqrt(v) | share below eps |")
        print("| --- | ---: | ---: | ---: |")
        for t in r["tensors"]:
            print(f"| {t['name']} | {t['numel']:,} | {t['median_sqrt_v']:.2e} | "
                  f"{t['share_below_eps']:.0%} |")  # fmt: skip
    if args.json:
        figures = {"provenance": provenance(), "checkpoints": results}
        args.json.write_text(json.dumps(figures, indent=2) + "\n")


if __name__ == "__main__":
    main()
