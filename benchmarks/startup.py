"""Start-up: seconds from launching ``apex-dqn`` to its first learner update, against a floor.

The floor is the least a Ray program with a torch learner can take here: a fresh Python that
imports Ray, starts a local Ray instance and waits for one actor that imports torch. apex-dqn
(``python -m apex_dqn`` with the defaults, CartPole-v1) is launched the same way, and its
``summary.json`` says when its learner made its first update (``first_update_at``, wall-clock,
on the same machine's clock). The two alternate, ``--repeats`` times each; the table gives the
medians and apex-dqn's ratio to the floor. ``--cold`` drops the page cache before every launch
(``sync; echo 3 > /proc/sys/vm/drop_caches``, needs root): what a user meets after a reboot.

    python benchmarks/startup.py --repeats 5 --json startup.json
    sudo python benchmarks/startup.py --cold --repeats 3
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from provenance import provenance

FLOOR = """
import time, ray
ray.init(num_cpus=2, include_dashboard=False, logging_level="WARNING")

@ray.remote(num_cpus=0.5)
class Learner:
    def __init__(self):
        import torch
        self.net = torch.nn.Linear(4, 2)

    def ready(self):
        return time.time()

print(ray.get(Learner.remote().ready.remote()))
ray.shutdown()
"""


def drop_caches() -> None:
    """Empty the page cache (root only), so that the next launch reads every file from disk."""
    subprocess.run(["sync"], check=True)
    Path("/proc/sys/vm/drop_caches").write_text("3\n")


def floor_s(timeout: float) -> float:
    """Launch to the ready torch actor of the floor program."""
    start = time.time()
    proc = subprocess.run(
        [sys.executable, "-c", FLOOR],
        capture_output=True,
        text=True,
        timeout=timeout,
        stdin=subprocess.DEVNULL,
        check=True,
    )
    return float(proc.stdout.strip().splitlines()[-1]) - start


def apex_s(workdir: Path, index: int, overrides: list[str], timeout: float) -> dict[str, float]:
    """Launch to apex-dqn's first learner update; also the whole command's wall time."""
    out = workdir / f"run{index}"
    cmd = [sys.executable, "-m", "apex_dqn", f"output_dir={out}", "train.plot=false", *overrides]
    start = time.time()
    proc = subprocess.run(
        cmd, capture_output=True, text=True, timeout=timeout, stdin=subprocess.DEVNULL
    )
    wall = time.time() - start
    if proc.returncode != 0:
        raise RuntimeError(f"apex-dqn failed ({proc.returncode}): {proc.stderr[-2000:]}")
    summary = json.loads((out / "summary.json").read_text())
    first = summary["first_update_at"]
    if first is None:
        raise RuntimeError(f"run {out} made no update")
    return {
        "first_update_s": first - start,
        "process_to_first_update_s": first - summary["started_at"],
        "launch_to_python_s": summary["started_at"] - start,
        "command_wall_s": wall,
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5, help="launches of each (default 5)")
    parser.add_argument("--cold", action="store_true", help="drop the page cache first (root)")
    parser.add_argument("--timeout", type=float, default=300.0)
    parser.add_argument("--json", type=Path, default=None, help="also write the figures here")
    parser.add_argument("overrides", nargs="*", help="extra overrides for apex-dqn")
    args = parser.parse_args(argv)
    if args.cold and os.geteuid() != 0:
        parser.error("--cold drops the page cache and needs root")
    floors: list[float] = []
    runs: list[dict[str, float]] = []
    with tempfile.TemporaryDirectory() as tmp:
        for i in range(args.repeats):
            # Alternating, and each pair in turn starting with the other.
            order = ("floor", "apex") if i % 2 == 0 else ("apex", "floor")
            for which in order:
                if args.cold:
                    drop_caches()
                if which == "floor":
                    floors.append(floor_s(args.timeout))
                else:
                    runs.append(apex_s(Path(tmp), i, args.overrides, args.timeout))
                print(f"{which} {i}: {floors[-1] if which == 'floor' else runs[-1]}", flush=True)
    result: dict[str, Any] = {
        "cold": args.cold,
        "repeats": args.repeats,
        "overrides": args.overrides,
        "cpus": os.cpu_count(),
        "floor_s": floors,
        "apex": runs,
        "median_floor_s": statistics.median(floors),
        "median_first_update_s": statistics.median(r["first_update_s"] for r in runs),
        "median_command_wall_s": statistics.median(r["command_wall_s"] for r in runs),
    }
    result["ratio"] = result["median_first_update_s"] / result["median_floor_s"]
    cache = "cold (page cache dropped before each launch)" if args.cold else "warm"
    print()
    print(f"| start-up, {cache} | median (s) | launches |")
    print("| --- | ---: | ---: |")
    print(
        f"| floor: Ray + one torch actor ready | {result['median_floor_s']:.2f} | {len(floors)} |"
    )
    print(
        f"| apex-dqn: launch to first learner update | {result['median_first_update_s']:.2f} "
        f"| {len(runs)} |"
    )
    print(f"| ratio | {result['ratio']:.2f}x | |")
    print(
        f"| apex-dqn: whole command (CartPole solved) | {result['median_command_wall_s']:.2f} | |"
    )
    if args.json:
        result["provenance"] = provenance()
        args.json.write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
