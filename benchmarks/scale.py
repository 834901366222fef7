"""Scale benchmark: the control plane (driver, parameter server, shards) as actors grow.

Each point starts a ``ray.cluster_utils.Cluster`` of ``--nodes`` nodes on this machine (each
its own raylet and object store) and trains CartPole-v1 with A light actors spread over the
nodes and S replay shards (``AxS``), in a fresh process. Once every actor has reported and the
learner has updated, it measures a window of ``--seconds``:

- the driver's CPU seconds per wall second and per actor call, and its latency (an actor
  call's end to the driver handling it and calling the actor again);
- the parameter server's fan-out: policy lag in learner updates and the weights' age;
- transitions accepted per second per shard and in total, and samples served to the learner;
- object-store memory in use and spilled; resident memory of the driver, shards and actors at
  the window's start and end.

Actors are not throttled (``actors.min_replay_ratio=0``) so that every call is a full
``steps_per_call``; with more actors than cores they share the CPU, so per-actor env steps fall
while the control plane's work per call is what grows or not.

    python benchmarks/scale.py --points 8x1,32x4,64x8 --nodes 4 --seconds 30 --json scale.json
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import psutil
import ray
from soak import named, rss_mb, spilled_mb

from apex_dqn.config import Config
from apex_dqn.envs.factory import inspect_env
from apex_dqn.runtime import ray_runtime
from apex_dqn.runtime.ray_cluster import object_store_used

sys.path.insert(0, str(Path(__file__).resolve().parent))
from provenance import provenance

# Light actors: tiny CPU shares, so that 64 fit on logical CPUs; pushes as in a real run.
POINT_OVERRIDES = (
    "train.stop_on_target=false",
    "train.max_env_steps=1000000000000",
    "train.report_interval_s=1",
    "train.plot=false",
    "checkpoint.every_s=0",
    "eval.enabled=false",
    "actors.num_cpus=0.02",
    "actors.min_replay_ratio=0",
    "replay.num_cpus=0.02",
    "ray.parameter_server_num_cpus=0.02",
    "learner.num_cpus=0.5",
)


def _records(run_dir: Path) -> list[dict[str, Any]]:
    path = run_dir / "metrics.jsonl"
    if not path.is_file():
        return []
    out = []
    for line in path.read_text().splitlines():
        try:
            out.append(json.loads(line))
        except json.JSONDecodeError:  # the line being written right now
            break
    return out


def _pids(kind: str) -> list[int]:
    """Process ids of this run's live named actors of ``kind`` (actor, shard)."""
    # Asked of all at once: each answers after its call in flight, so one by one would take
    # the sum of those waits.
    refs = [ray.get_actor(name, namespace=ns).pid.remote() for name, ns in named(kind)]
    out = []
    for ref in refs:
        try:
            out.append(ray.get(ref, timeout=30))
        except Exception:  # restarting: not counted in this sample
            continue
    return out


def _memory() -> dict[str, Any]:
    actors = [rss_mb(p) for p in _pids("actor")]
    shards = [rss_mb(p) for p in _pids("shard")]
    used = object_store_used()
    return {
        "driver_rss_mb": rss_mb(os.getpid()),
        "shard_rss_mb_mean": statistics.fmean(shards) if shards else None,
        "actor_rss_mb_mean": statistics.fmean(actors) if actors else None,
        "actors_rss_mb_total": sum(actors),
        "object_store_used_mb": None if used is None else used / 2**20,
        "object_store_spilled_mb": spilled_mb(),
    }


def _shard_added() -> list[int]:
    refs = [ray.get_actor(name, namespace=ns).stats.remote() for name, ns in named("shard")]
    return [stats.added for stats in ray.get(refs, timeout=30)]


class Window(threading.Thread):
    """Waits until the run is warm, measures ``seconds``, then stops the run with SIGINT."""

    def __init__(self, run_dir: Path, num_actors: int, seconds: float, warm_s: float) -> None:
        super().__init__(daemon=True)
        self.run_dir, self.num_actors = run_dir, num_actors
        self.seconds, self.warm_s = seconds, warm_s
        self.figures: dict[str, Any] = {}

    def _warm(self) -> bool:
        records = _records(self.run_dir)
        if not records or records[-1]["charts/learner_steps"] <= 0:
            return False
        seen = {k for k in records[-1] if k.endswith("/env_steps_per_s") and "/actor" in k}
        return len(seen) >= self.num_actors

    def run(self) -> None:
        try:
            started = time.time()
            while not self._warm():
                time.sleep(0.5)
            self.figures["warm_after_s"] = time.time() - started
            time.sleep(self.warm_s)
            # The samples' own Ray calls run in this (the driver's) process: they are taken
            # outside the window whose driver CPU is measured.
            me = psutil.Process()
            self.figures["start"] = _memory()
            added0 = _shard_added()
            t0, cpu0 = time.time(), sum(me.cpu_times()[:2])
            first = _records(self.run_dir)[-1]
            time.sleep(self.seconds)
            last = _records(self.run_dir)[-1]
            t1, cpu1 = time.time(), sum(me.cpu_times()[:2])
            added1 = _shard_added()
            self.figures["end"] = _memory()
            self.figures.update(
                t0=t0,
                t1=t1,
                driver_cpu_s=cpu1 - cpu0,
                shard_added=[b - a for a, b in zip(added0, added1, strict=False)],
                env_steps=last["charts/env_steps"] - first["charts/env_steps"],
                learner_steps=last["charts/learner_steps"] - first["charts/learner_steps"],
                window_s=last["charts/wall_s"] - first["charts/wall_s"],
                wall_s=t1 - t0,
            )
        except BaseException as exc:
            self.figures["error"] = f"{type(exc).__name__}: {exc}"
        finally:
            os.kill(os.getpid(), signal.SIGINT)


def _spread(records: list[dict[str, Any]], template: str) -> dict[str, float | None]:
    """Median of the intervals' p50 and p95, and the largest max, over the window."""
    out: dict[str, float | None] = {}
    for stat, pick in (("p50", statistics.median), ("p95", statistics.median), ("max", max)):
        values = [r[template.format(stat=stat)] for r in records]
        values = [v for v in values if v is not None]
        out[stat] = pick(values) if values else None
    return out


def run_point(actors: int, shards: int, nodes: int, seconds: float, overrides: list[str]) -> dict:
    """One point in this process: a cluster, a run, the window's figures."""
    from omegaconf import OmegaConf
    from ray.cluster_utils import Cluster

    # Workers at niceness 0, as the launch files start Ray (Ray's default is 15; set
    # RAY_worker_niceness to measure another).
    os.environ.setdefault("RAY_worker_niceness", "0")
    cluster = Cluster(initialize_head=True, head_node_args={"num_cpus": 2})
    for _ in range(nodes - 1):
        cluster.add_node(num_cpus=2)
    cluster.wait_for_nodes()
    run_dir = Path(tempfile.mkdtemp(prefix="apex-dqn-scale-"))
    dotlist = [
        *POINT_OVERRIDES,
        f"ray.address={cluster.address}",
        f"actors.num_actors={actors}",
        f"replay.num_shards={shards}",
        "train.max_seconds=3600",
        f"output_dir={run_dir}",
        *overrides,
    ]
    cfg = OmegaConf.to_object(
        OmegaConf.merge(OmegaConf.structured(Config), OmegaConf.from_dotlist(dotlist))
    )
    assert isinstance(cfg, Config)
    window = Window(run_dir, actors, seconds, warm_s=5.0)
    window.start()
    try:
        summary = ray_runtime.train(cfg, inspect_env(cfg.env), run_dir)
    finally:
        window.join(timeout=60)
        if ray.is_initialized():
            ray.shutdown()
        cluster.shutdown()
    f = window.figures
    if "error" in f:
        raise RuntimeError(f["error"])
    inside = [r for r in _records(run_dir) if _in_window(r, f, summary)]
    calls = f["env_steps"] / (cfg.actors.envs_per_actor * cfg.actors.steps_per_call)
    w = f["window_s"]
    return {
        "actors": actors,
        "shards": shards,
        "nodes": nodes,
        "window_s": round(w, 2),
        "warm_after_s": round(f["warm_after_s"], 1),
        "actor_calls_per_s": calls / w,
        "env_steps_per_s": f["env_steps"] / w,
        "driver_cpu_s_per_s": f["driver_cpu_s"] / f["wall_s"],
        "driver_cpu_ms_per_call": 1000 * f["driver_cpu_s"] / max(calls, 1),
        "driver_latency_ms": _spread(inside, "perf/driver_latency_ms_{stat}"),
        "policy_lag_updates": _spread(inside, "actors/policy_lag_{stat}"),
        "weights_age_s": _spread(inside, "actors/weights_age_s_{stat}"),
        "accepted_per_s_per_shard": [a / f["wall_s"] for a in f["shard_added"]],
        "accepted_per_s": sum(f["shard_added"]) / f["wall_s"],
        "learner_updates_per_s": f["learner_steps"] / w,
        "learner_samples_per_s": f["learner_steps"] * cfg.learner.batch_size / w,
        "start": f["start"],
        "end": f["end"],
    }


def _in_window(record: dict[str, Any], f: dict[str, Any], summary: dict[str, Any]) -> bool:
    """Whether a metrics record was written inside the measured window."""
    train_start = summary["started_at"] + summary["startup_s"]["train_called"]
    at = train_start + record["charts/wall_s"]
    return f["t0"] < at <= f["t1"] + 0.5


def _table(points: list[dict[str, Any]]) -> str:
    head = (
        "| actors x shards | calls/s | driver CPU s/s | driver ms/call | latency p50/p95 ms "
        "| lag p50/p95/max | weights age p95 s | accepted/s (per shard) | learner samples/s "
        "| object store MiB | driver RSS MiB start→end | actor RSS MiB |"
    )
    lines = [head, "|" + " --- |" * 12]
    for p in points:
        lat, lag, age = p["driver_latency_ms"], p["policy_lag_updates"], p["weights_age_s"]
        per = p["accepted_per_s_per_shard"]
        lines.append(
            f"| {p['actors']} x {p['shards']} | {p['actor_calls_per_s']:.0f} "
            f"| {p['driver_cpu_s_per_s']:.2f} | {p['driver_cpu_ms_per_call']:.2f} "
            f"| {_fmt(lat['p50'])} / {_fmt(lat['p95'])} "
            f"| {_fmt(lag['p50'])} / {_fmt(lag['p95'])} / {_fmt(lag['max'])} "
            f"| {_fmt(age['p95'])} | {p['accepted_per_s']:.0f} ({min(per):.0f}-{max(per):.0f}) "
            f"| {p['learner_samples_per_s']:.0f} | {_fmt(p['end']['object_store_used_mb'])} "
            f"| {p['start']['driver_rss_mb']:.0f}→{p['end']['driver_rss_mb']:.0f} "
            f"| {_fmt(p['end']['actor_rss_mb_mean'])} |"
        )
    return "\n".join(lines)


def _fmt(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--points", default="8x1,32x4,64x8", help="actors x shards, comma list")
    parser.add_argument("--nodes", type=int, default=4)
    parser.add_argument("--seconds", type=float, default=30.0, help="measured window per point")
    parser.add_argument("--json", type=Path, default=None)
    parser.add_argument("--one", default=None, help=argparse.SUPPRESS)  # a child: AxS
    parser.add_argument("overrides", nargs="*", help="key=value overrides (dotted config keys)")
    args = parser.parse_args()
    if args.one:
        a, s = (int(x) for x in args.one.split("x"))
        point = run_point(a, s, args.nodes, args.seconds, args.overrides)
        args.json.write_text(json.dumps(point, indent=2) + "\n")
        return
    points = []
    for spec in args.points.split(","):
        with tempfile.NamedTemporaryFile(suffix=".json") as tmp:
            cmd = [
                sys.executable,
                __file__,
                "--one",
                spec,
                "--nodes",
                str(args.nodes),
                "--seconds",
                str(args.seconds),
                "--json",
                tmp.name,
                *args.overrides,
            ]
            subprocess.run(cmd, check=True, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL)
            points.append(json.loads(Path(tmp.name).read_text()))
        print(f"scale: {spec} done", file=sys.stderr, flush=True)
    print(_table(points))
    if args.json:
        figures = {
            "command": "python benchmarks/scale.py " + " ".join(sys.argv[1:]),
            "machine": f"{os.cpu_count()} CPUs",
            "points": points,
            "provenance": provenance(),
        }
        args.json.write_text(json.dumps(figures, indent=2) + "\n")


if __name__ == "__main__":
    main()
