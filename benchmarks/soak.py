"""Soak test: train for a while under injected faults and check that nothing leaks or is lost.

Runs the default training (CartPole-v1, a local Ray instance, targets off) for ``--minutes``
while a chaos thread kills a random actor every ``--actor-kill-s`` seconds and a replay shard
every ``--shard-kill-s`` seconds (``ray.kill`` with restarts allowed: Ray brings them back).
It reports env steps, transitions pushed by actors and received by shards, those lost in
flight at a kill and any other loss, restarts, the driver's and a shard's resident memory when
the replay first became full and at the end, and object-store spilling. The driver's memory is
also sampled every 30 s, and its growth after the replay is full is fitted as MiB per minute.

With ``--nodes N`` (N > 1) the run is multi-node: a ``ray.cluster_utils.Cluster`` of N nodes of
2 CPUs each on this machine (each its own raylet and object store), actors spread over them.

    python benchmarks/soak.py --minutes 20 --json soak.json [overrides ...]
    python benchmarks/soak.py --minutes 20 --nodes 3 --json soak_3nodes.json
"""

from __future__ import annotations

import argparse
import json
import os
import random
import re
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import psutil
import ray

from apex_dqn.config import Config
from apex_dqn.envs.factory import inspect_env
from apex_dqn.runtime import ray_runtime

sys.path.insert(0, str(Path(__file__).resolve().parent))
from provenance import provenance


def rss_mb(pid: int) -> float:
    return psutil.Process(pid).memory_info().rss / 2**20


def named(kind: str) -> list[tuple[str, str]]:
    """(name, namespace) of this run's named actors of ``kind`` (actor, shard)."""
    out = []
    for entry in ray.util.list_named_actors(all_namespaces=True):
        name = entry["name"] if isinstance(entry, dict) else entry
        ns = entry.get("namespace", ray_runtime.NAMESPACE) if isinstance(entry, dict) else None
        if name.startswith("apex-dqn-") and re.search(rf"-{kind}\d+$", name):
            out.append((name, ns or ray_runtime.NAMESPACE))
    return sorted(out)


MEMORY_EVERY_S = 30.0


def growth_mb_per_min(series: list[tuple[float, float]], after_s: float) -> float | None:
    """Least-squares slope of (seconds, MiB) samples from ``after_s`` on, in MiB per minute."""
    points = [(t, m) for t, m in series if t >= after_s]
    if len(points) < 3:
        return None
    n = len(points)
    mt = sum(t for t, _ in points) / n
    mm = sum(m for _, m in points) / n
    var = sum((t - mt) ** 2 for t, _ in points)
    return 60.0 * sum((t - mt) * (m - mm) for t, m in points) / var


class Chaos(threading.Thread):
    """Kills actors and shards on a schedule and samples memory (see module docstring)."""

    def __init__(self, args: argparse.Namespace, capacity: int) -> None:
        super().__init__(daemon=True)
        self.args = args
        self.capacity = capacity
        self.stop = threading.Event()
        self.actor_kills = 0
        self.shard_kills = 0
        self.received_before_kills = 0
        self.full_at_s: float | None = None
        self.driver_rss_full: float | None = None
        self.shard_rss_full: float | None = None
        self.driver_rss_end: float | None = None
        self.shard_rss_end: float | None = None
        # (seconds since start, driver RSS MiB) every MEMORY_EVERY_S.
        self.driver_rss: list[tuple[float, float]] = []
        self.rng = random.Random(0)

    def _shard_stats(self, patience_s: float = 0.0) -> list[tuple[Any, Any]]:
        """Every shard's stats; a shard that is restarting is asked again for ``patience_s``."""
        out = []
        for name, ns in named("shard"):
            handle = ray.get_actor(name, namespace=ns)
            deadline = time.time() + patience_s
            while True:
                try:
                    out.append((handle, ray.get(handle.stats.remote(), timeout=30)))
                    break
                except ray.exceptions.ActorUnavailableError:
                    if time.time() >= deadline:
                        raise
                    time.sleep(1.0)
        return out

    def _sample_memory(self) -> tuple[float, float]:
        shard = ray.get_actor(*named("shard")[0])
        return rss_mb(psutil.Process().pid), rss_mb(ray.get(shard.pid.remote(), timeout=30))

    def run(self) -> None:
        start = time.time()
        next_actor = start + self.args.actor_kill_s
        next_shard = start + self.args.shard_kill_s
        end_sample_at = start + self.args.minutes * 60 - 5
        # No kills in the last minute: the final counts need every shard up.
        last_kill_at = start + self.args.minutes * 60 - 60
        next_memory = start
        while not self.stop.wait(1.0):
            now = time.time()
            if now >= next_memory:
                self.driver_rss.append((now - start, rss_mb(psutil.Process().pid)))
                next_memory += MEMORY_EVERY_S
            try:
                if self.full_at_s is None and named("shard"):
                    size = sum(s.size for _, s in self._shard_stats())
                    if size >= self.capacity:
                        self.full_at_s = now - start
                        self.driver_rss_full, self.shard_rss_full = self._sample_memory()
                if now >= next_actor and now < last_kill_at and named("actor"):
                    name, ns = self.rng.choice(named("actor"))
                    ray.kill(ray.get_actor(name, namespace=ns), no_restart=False)
                    self.actor_kills += 1
                    next_actor += self.args.actor_kill_s
                if now >= next_shard and now < last_kill_at and named("shard"):
                    handle, stats = self.rng.choice(self._shard_stats())
                    self.received_before_kills += stats.added
                    ray.kill(handle, no_restart=False)
                    self.shard_kills += 1
                    next_shard += self.args.shard_kill_s
                if self.driver_rss_end is None and now >= end_sample_at:
                    self.driver_rss_end, self.shard_rss_end = self._sample_memory()
            except Exception as exc:  # a component restarting right now: try again next tick
                print(f"soak: chaos tick failed ({type(exc).__name__}: {exc})", file=sys.stderr)


def spilled_mb() -> float | None:
    """MiB spilled from the object store so far (Ray's memory summary; None if unknown)."""
    try:
        from ray._private.internal_api import memory_summary

        text = memory_summary(stats_only=True)
    except Exception:
        return None
    match = re.search(r"Spilled\s+([\d.]+)\s+MiB", text)
    return float(match.group(1)) if match else 0.0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=20.0)
    parser.add_argument("--actor-kill-s", type=float, default=30.0)
    parser.add_argument("--shard-kill-s", type=float, default=300.0)
    parser.add_argument("--nodes", type=int, default=1, help="> 1: a multi-node Cluster")
    parser.add_argument("--json", type=Path, default=None)
    parser.add_argument("overrides", nargs="*", help="key=value overrides (dotted config keys)")
    args = parser.parse_args()

    from omegaconf import OmegaConf

    cluster = None
    if args.nodes > 1:
        from ray.cluster_utils import Cluster

        os.environ.setdefault("RAY_worker_niceness", "0")  # as the launch files start Ray
        cluster = Cluster(initialize_head=True, head_node_args={"num_cpus": 2})
        for _ in range(args.nodes - 1):
            cluster.add_node(num_cpus=2)
        cluster.wait_for_nodes()

    base = OmegaConf.structured(Config)
    cli = OmegaConf.from_dotlist(
        [
            f"train.max_seconds={args.minutes * 60}",
            "train.stop_on_target=false",
            "train.max_env_steps=1000000000000",
            "replay.num_shards=2",
            *([f"ray.address={cluster.address}"] if cluster else []),
            *args.overrides,
        ]
    )
    cfg = OmegaConf.to_object(OmegaConf.merge(base, cli))
    assert isinstance(cfg, Config)
    info = inspect_env(cfg.env)
    out_dir = Path(tempfile.mkdtemp(prefix="apex-dqn-soak-"))
    cfg.output_dir = str(out_dir)

    ray_runtime.init_ray(cfg.ray)
    chaos = Chaos(args, cfg.replay.capacity)
    chaos.start()
    final_added = 0

    def count_received() -> None:
        nonlocal final_added
        chaos.stop.set()
        chaos.join()
        final_added = sum(s.added for _, s in chaos._shard_stats(patience_s=60.0))

    try:
        summary = ray_runtime.train(cfg, info, out_dir, on_stopped=count_received)
    except BaseException:
        if cluster is not None:  # its raylets would outlive this process
            ray.shutdown()
            cluster.shutdown()
        raise
    finally:
        chaos.stop.set()
    records = [json.loads(line) for line in (out_dir / "metrics.jsonl").read_text().splitlines()]
    last = records[-1]
    received = int(chaos.received_before_kills + final_added)
    pushed = int(last.get("actors/transitions_pushed", 0))
    in_flight = int(last.get("actors/transitions_lost", 0))
    spilled = spilled_mb()
    nodes = sum(1 for node in ray.nodes() if node["Alive"])
    ray.shutdown()
    if cluster is not None:
        cluster.shutdown()
    # Growth is fitted from a full replay on: before, the shards are still filling.
    growth = (
        None if chaos.full_at_s is None else growth_mb_per_min(chaos.driver_rss, chaos.full_at_s)
    )
    figures = {
        "minutes": args.minutes,
        "nodes": nodes,
        "env_steps": summary["env_steps"],
        "learner_steps": summary["learner_steps"],
        "transitions_pushed": pushed,
        "transitions_received": received,
        "transitions_lost_in_flight_at_kill": in_flight,
        "transitions_lost": pushed - received - in_flight,
        "actor_kills": chaos.actor_kills,
        "actor_restarts": summary["actor_restarts"],
        "shard_kills": chaos.shard_kills,
        "shard_restarts": int(last.get("replay/shard_restarts", 0)),
        "replay_full_at_s": chaos.full_at_s,
        "driver_rss_mb_start": chaos.driver_rss_full,
        "driver_rss_mb_end": chaos.driver_rss_end,
        "driver_rss_mb_max": max((m for _, m in chaos.driver_rss), default=None),
        "driver_rss_growth_mb_per_min_after_full": growth,
        "shard_rss_mb_start": chaos.shard_rss_full,
        "shard_rss_mb_end": chaos.shard_rss_end,
        "object_store_spilled_mb": spilled,
        "best_eval_return": summary["best_eval_return"],
        "final_eval_return": summary["final_eval_return"],
        "run_dir": str(out_dir),
        "driver_rss_mb_series": [[round(t, 1), round(m, 1)] for t, m in chaos.driver_rss],
        "command": " ".join(["python", "benchmarks/soak.py", *sys.argv[1:]]),
    }
    print("| figure | value |\n| --- | ---: |")
    for key, value in figures.items():
        if key == "driver_rss_mb_series":
            continue
        shown = f"{value:.1f}" if isinstance(value, float) else value
        print(f"| {key} | {shown} |")
    if args.json:
        figures["provenance"] = provenance()
        args.json.write_text(json.dumps(figures, indent=2) + "\n")


if __name__ == "__main__":
    main()
