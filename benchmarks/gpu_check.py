"""Every GPU check in one run, for the day a GPU is lent (issue 27): about 8 minutes on one GPU
and 16 cores, every figure into JSON under ``--out`` (the device tool's ``$OUT``).

1. the ``gpu`` tests (CUDA staging, pinned copies, bf16 autocast), their pytest summary;
2. ``learner_bench.py`` on the device, batch 512: the step alone and the full path through
   Ray replay shards, fp32 and bf16 autocast;
3. two learners in one group (``learner_bench.py --learners 1,2``): on one GPU they share it,
   so the group uses gloo (NCCL needs a GPU per rank; with two GPUs it is NCCL);
4. ``experiment=pong`` sized for one GPU and 16 cores (batch 512, 14 actors, 2 shards) for
   ``--pong-s`` seconds through ``pong.py``: its learner updates/s against the benchmark's
   full-path rate, and the greedy return it reached.

``--dry-run`` runs the same steps on the CPU in seconds each (tiny batches, a 20 s Pong run):
the code paths that need no CUDA, so that the script does not rot; a test runs it.

    python benchmarks/gpu_check.py --out $OUT            # on the GPU machine
    python benchmarks/gpu_check.py --out /tmp/gc --dry-run
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(Path(__file__).resolve().parent))
from provenance import provenance  # noqa: E402

PONG_GPU = [
    "learner.batch_size=512",
    "actors.num_actors=14",
    "replay.num_shards=2",
    "replay.capacity=1000000",
]
PONG_DRY = [
    "actors.num_actors=1",
    "actors.envs_per_actor=4",
    "actors.push_every=64",
    "replay.capacity=4000",
    "replay.min_size_to_learn=512",
    "learner.batch_size=32",
    "eval.episodes=1",
    "eval.interval_s=5",
    "env.max_episode_steps=150",
]


def steps(
    out: Path, pong_dir: Path, dry: bool, pong_s: float
) -> list[tuple[str, list[str], float]]:
    """(name, command, timeout in seconds) of each check, run from the repository root;
    Pong's files go to ``pong_dir`` (the device tool brings back only 8 files from $OUT)."""
    py = sys.executable
    if dry:
        bench = ["--device", "cpu", "--batch-size", "8", "--seconds", "0.3", "--repeats", "1",
                 "--warmup", "1", "--capacity", "256"]  # fmt: skip
    else:
        bench = ["--device", "cuda", "--batch-size", "512", "--seconds", "5", "--repeats", "3",
                 "--shards", "4", "--capacity", "100000"]  # fmt: skip
    pong_overrides = [x for o in (PONG_DRY if dry else PONG_GPU) for x in ("--override", o)]
    return [
        ("gpu_tests", [py, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-m", "gpu",
                       "tests/unit/test_gpu.py"], 300),
        ("learner", [py, "benchmarks/learner_bench.py", *bench, "--amp",
                     "--json", str(out / "learner.json")], 300),
        ("learners", [py, "benchmarks/learner_bench.py", *bench, "--skip-full-path",
                      "--learners", "1,2", "--json", str(out / "learners.json")], 300),
        ("pong", [py, "benchmarks/pong.py", "--budget-s", f"{pong_s:g}",
                  "--out", str(pong_dir), *pong_overrides], pong_s + 240),
    ]  # fmt: skip


def run_step(name: str, cmd: list[str], timeout: float) -> dict[str, Any]:
    """Run one check; its return code, seconds and the tail of its output."""
    start = time.monotonic()
    try:
        proc = subprocess.run(
            cmd, cwd=ROOT, capture_output=True, text=True, timeout=timeout, stdin=subprocess.DEVNULL
        )
        code, output = proc.returncode, proc.stdout + proc.stderr
    except subprocess.TimeoutExpired as exc:
        code, output = -9, f"timed out after {timeout:g} s: {exc}"
    print(f"{name}: rc {code} in {time.monotonic() - start:.0f} s", flush=True)
    return {"returncode": code, "seconds": round(time.monotonic() - start, 1),
            "output_tail": output[-2000:]}  # fmt: skip


def summary(out: Path, pong_dir: Path, results: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """The figures of every check, from the JSONs the steps wrote."""

    def load(path: Path) -> dict[str, Any]:
        return json.loads(path.read_text()) if path.exists() else {}

    learner, learners = load(out / "learner.json"), load(out / "learners.json")
    pong = load(pong_dir / "pong.json")
    batch = learner.get("batch_size")
    full = learner.get("full_path_samples_per_s")
    full_updates = full / batch if full and batch else None
    pong_rate = pong.get("learner_updates_per_s")
    return {
        "steps": results,
        "gpu_tests_tail": results["gpu_tests"]["output_tail"].strip().splitlines()[-1:],
        "learner_device": learner.get("device"),
        "learner_variants": learner.get("variants"),
        "learner_full_path_updates_per_s": full_updates,
        "learners": learners.get("learners"),
        "pong_learner_updates_per_s": pong_rate,
        # The run's learner against the benchmark's full path, same batch: what the actors,
        # the evaluator and the driver cost the learner in a real run.
        "pong_vs_full_path": pong_rate / full_updates if pong_rate and full_updates else None,
        "pong_best_eval_return": pong.get("best_eval_return"),
        "pong_env_steps_per_s": pong.get("env_steps_per_s"),
        "provenance": provenance(),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, required=True, help="where the JSONs go ($OUT)")
    parser.add_argument("--dry-run", action="store_true", help="the CPU paths, seconds each")
    parser.add_argument("--pong-s", type=float, default=None, help="Pong's budget (300; dry 20)")
    args = parser.parse_args(argv)
    pong_s = args.pong_s if args.pong_s is not None else (20.0 if args.dry_run else 300.0)
    args.out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="gpu-check-pong-") as tmp:
        pong_dir = Path(tmp)
        todo = steps(args.out, pong_dir, args.dry_run, pong_s)
        results = {name: run_step(name, cmd, t) for name, cmd, t in todo}
        figures = summary(args.out, pong_dir, results)
        if (pong_dir / "pong.json").exists():
            shutil.copy(pong_dir / "pong.json", args.out / "pong.json")
    (args.out / "gpu_check.json").write_text(json.dumps(figures, indent=2) + "\n")
    print(json.dumps({k: v for k, v in figures.items() if k != "steps"}, indent=2, default=str))
    return 0 if all(r["returncode"] == 0 for r in results.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
