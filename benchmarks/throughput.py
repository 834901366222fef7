"""Whole-system throughput on an Atari game against the raw speed of its environment.

First the env the actors step (with the defaults ale-py's C++ vector env, one env of it; else
gymnasium's AtariPreprocessing and a 4-frame stack) is stepped with random actions in one
process: the raw env speed; gymnasium's wrappers are measured beside it for reference. Then the
real CLI (``experiment=pong`` plus ``--override``s, evaluation off) runs for ``--seconds`` per
actor count in each configuration, and its ``metrics.jsonl`` gives env steps/s, learner
updates/s and the replay ratio over the part of the run in which the learner trains (from the
first report with updates to the last). The configurations (``--configs``):

- ``defaults``: what a user gets. Actors pause while the learner has drawn fewer than
  ``actors.min_replay_ratio`` samples per transition (2 for Atari): the CPU goes to updates, and
  env steps/s follow the learner.
- ``unthrottled``: the same stepper settings with the actors never paused and the learner held
  to 0.2 samples per transition (``actors.min_replay_ratio=0 learner.max_replay_ratio=0.2``): how
  fast the default actors step when the CPU is theirs.
- ``learner_1_thread``: the defaults with the learner's torch on 1 thread
  (``learner.num_threads=1``), against the 2 that ``auto`` gives a CPU Atari learner on 2 cores.
- ``learner_nchw``: the defaults with the learner's networks in the NCHW layout
  (``learner.channels_last=false``), against channels-last on a CPU learner by default.

    python benchmarks/throughput.py --json throughput.json
    python benchmarks/throughput.py --actors 1 --seconds 120 --configs unthrottled
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

import yaml

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402

from apex_dqn.config import AtariConfig, EnvConfig  # noqa: E402
from apex_dqn.envs.factory import inspect_env  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))
from provenance import provenance  # noqa: E402


def raw_env_speed(
    env_id: str, seconds: float, repeats: int = 3, mode: str = "sync", num_envs: int = 1
) -> float:
    """Median agent steps/s of the preprocessed env with random actions, in this process: one
    gymnasium env (AtariPreprocessing + FrameStackObservation), or with ``mode="ale"`` ale-py's
    vector env of ``num_envs`` envs as an actor steps it (all its envs' steps counted)."""
    from apex_dqn.envs.factory import make_env, make_vector_env

    cfg = EnvConfig(id=env_id, atari=AtariConfig())
    steps_per_call = 1
    if mode == "ale":
        env: Any = make_vector_env(cfg, num_envs=num_envs, mode="ale")
        rng = np.random.default_rng(0)
        num_actions = inspect_env(cfg).num_actions
        steps_per_call = num_envs

        def step() -> None:
            env.step(rng.integers(0, num_actions, num_envs))  # ended episodes reset themselves

    else:
        env = make_env(cfg)
        env.action_space.seed(0)

        def step() -> None:
            _, _, term, trunc, _ = env.step(env.action_space.sample())
            if term or trunc:
                env.reset()

    env.reset(seed=0)
    rates = []
    for _ in range(repeats):
        start, steps = time.perf_counter(), 0
        while time.perf_counter() - start < seconds:
            step()
            steps += steps_per_call
        rates.append(steps / (time.perf_counter() - start))
    env.close()
    return statistics.median(rates)


CONFIGS = {
    "defaults": [],
    "unthrottled": ["actors.min_replay_ratio=0", "learner.max_replay_ratio=0.2"],
    # The learner's torch on 1 thread, as before learner.num_threads=auto gave a CPU Atari
    # learner 2: does it gain from the CPU that throttled actors leave idle?
    "learner_1_thread": ["learner.num_threads=1"],
    # The learner's networks in the NCHW layout, as before learner.channels_last=auto.
    "learner_nchw": ["learner.channels_last=false"],
}


def actor_settings(overrides: list[str]) -> tuple[str, int]:
    """``actors.vector_mode`` and ``actors.envs_per_actor`` of ``experiment=pong`` with
    ``overrides`` (the real composition)."""
    from hydra import compose, initialize_config_dir

    from apex_dqn.cli.train import CONF_DIR, to_config

    with initialize_config_dir(config_dir=CONF_DIR, version_base="1.3"):
        cfg = to_config(compose("config", overrides=["experiment=pong", *overrides]))
    return cfg.actors.vector_mode, cfg.actors.envs_per_actor


def system_run(
    env_id: str,
    num_actors: int,
    seconds: float,
    overrides: list[str],
    out: Path,
    report_interval_s: float = 5.0,
) -> dict[str, Any]:
    """One run of the CLI; rates over the reports in which the learner trained."""
    cmd = [
        sys.executable,
        "-m",
        "apex_dqn",
        "experiment=pong",
        f"env.id={env_id}",
        f"actors.num_actors={num_actors}",
        # Ray reservations only (processes are not pinned): the learner keeps its 1 CPU.
        f"actors.num_cpus={min(0.4, round(0.8 / num_actors, 3))}",
        f"train.max_seconds={seconds}",
        f"train.report_interval_s={report_interval_s:g}",
        "eval.enabled=false",  # the evaluator would compete for the CPU
        "checkpoint.every_s=0",
        "train.plot=false",
        f"output_dir={out}",
        *overrides,
    ]
    proc = subprocess.run(cmd, capture_output=True, text=True, stdin=subprocess.DEVNULL)
    if proc.returncode != 0:
        raise RuntimeError(f"run failed ({proc.returncode}): {proc.stderr[-2000:]}")
    records = [json.loads(x) for x in (out / "metrics.jsonl").read_text().splitlines()]
    training = [r for r in records if r["charts/learner_steps"] > 0]
    first, last = training[0], training[-1]
    wall = last["charts/wall_s"] - first["charts/wall_s"]
    steps = last["charts/env_steps"] - first["charts/env_steps"]
    updates = last["charts/learner_steps"] - first["charts/learner_steps"]
    batch = int(yaml.safe_load((out / "config.yaml").read_text())["learner"]["batch_size"])
    return {
        "num_actors": num_actors,
        "env_steps_per_s": steps / wall,
        "env_frames_per_s": 4 * steps / wall,
        "learner_updates_per_s": updates / wall,
        "replay_ratio": updates * batch / max(1, steps),
        "window_s": wall,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--env-id", default="ALE/Pong-v5")
    parser.add_argument("--actors", default="1,2,4", help="comma-separated actor counts")
    parser.add_argument("--seconds", type=float, default=90.0, help="length of each run")
    parser.add_argument(
        "--report-interval-s", type=float, default=5.0, help="rates are taken between reports"
    )
    parser.add_argument("--raw-seconds", type=float, default=5.0)
    parser.add_argument(
        "--repeats", type=int, default=1, help="runs per actor count; the median run is reported"
    )
    parser.add_argument("--override", action="append", default=[], help="extra CLI override")
    parser.add_argument(
        "--configs", default="defaults,unthrottled", help=f"comma-separated: {', '.join(CONFIGS)}"
    )
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    configs = args.configs.split(",")
    unknown = sorted(set(configs) - set(CONFIGS))
    if unknown:
        parser.error(f"--configs: unknown {unknown}; choose from {', '.join(CONFIGS)}")

    # The raw speed of the env the actors step (actors.vector_mode=ale: ale-py's vector env).
    mode, num_envs = actor_settings(args.override)
    raw = raw_env_speed(args.env_id, args.raw_seconds, mode="ale" if mode == "ale" else "sync")
    print(f"raw env: {raw:,.0f} steps/s ({4 * raw:,.0f} frames/s), one process", flush=True)
    raw_gym = raw if mode != "ale" else raw_env_speed(args.env_id, args.raw_seconds)
    raw_vector = None
    if mode == "ale":
        print(f"raw gymnasium env (reference): {raw_gym:,.0f} steps/s", flush=True)
        # The actor's own vector env (its envs_per_actor envs), stepped alone: ALE's C++
        # threads step them, so this is the stepper's own ceiling on this machine.
        raw_vector = raw_env_speed(args.env_id, args.raw_seconds, mode="ale", num_envs=num_envs)
        print(f"raw ale vector env, {num_envs} envs: {raw_vector:,.0f} steps/s", flush=True)
    runs = []
    with tempfile.TemporaryDirectory() as tmp:
        for k in (int(x) for x in args.actors.split(",")):
            # Configurations alternate within an actor count, so drift hits them alike.
            repeats: dict[str, list[dict[str, Any]]] = {c: [] for c in configs}
            for rep in range(args.repeats):
                for name in configs:
                    out = Path(tmp) / f"{name}-a{k}r{rep}"
                    overrides = [*CONFIGS[name], *args.override]
                    run = system_run(
                        args.env_id, k, args.seconds, overrides, out, args.report_interval_s
                    )
                    repeats[name].append({**run, "config": name})
                    rate = run["env_steps_per_s"]
                    print(
                        f"{name}, {k} actor(s), run {rep + 1}: {rate:,.0f} env steps/s", flush=True
                    )
            for name in configs:
                # The run with the median env speed stands for the configuration and count.
                ordered = sorted(repeats[name], key=lambda r: r["env_steps_per_s"])
                runs.append({**ordered[(len(ordered) - 1) // 2], "repeats": repeats[name]})
    print(f"\n| {args.env_id} | configuration | env steps/s | frames/s | share of raw env "
          "| updates/s | replay ratio |")  # fmt: skip
    print("| --- | --- | --- | --- | --- | --- | --- |")
    what = "ale-py vector env, 1 env" if mode == "ale" else "gymnasium wrappers"
    print(f"| raw env ({what}), random actions, 1 process | - | {raw:,.0f} | {4 * raw:,.0f} "
          "| 100% | - | - |")  # fmt: skip
    if raw_vector is not None:
        print(f"| raw env (gymnasium wrappers), for reference | - | {raw_gym:,.0f} | "
              f"{4 * raw_gym:,.0f} | {raw_gym / raw:.0%} | - | - |")  # fmt: skip
        print(f"| raw ale vector env, {num_envs} envs, stepped alone | - | {raw_vector:,.0f} | "
              f"{4 * raw_vector:,.0f} | {raw_vector / raw:.0%} | - | - |")  # fmt: skip
    for r in runs:
        print(
            f"| {r['num_actors']} actor(s) + learner | {r['config']} | "
            f"{r['env_steps_per_s']:,.0f} | "
            f"{r['env_frames_per_s']:,.0f} | {r['env_steps_per_s'] / raw:.0%} | "
            f"{r['learner_updates_per_s']:.1f} | {r['replay_ratio']:.2f} |"
        )
    if args.json:
        result = {
            "env_id": args.env_id,
            "raw_env_steps_per_s": raw,
            "raw_env_kind": what,
            "raw_gymnasium_env_steps_per_s": raw_gym,
            "raw_vector_env_steps_per_s": raw_vector,
            "raw_vector_env_num_envs": num_envs if raw_vector is not None else None,
            "runs": runs,
            "vector_mode": mode,
            "configs": {name: CONFIGS[name] for name in configs},
            "overrides": args.override,
            "cpus": os.cpu_count(),
            "provenance": provenance(),
        }
        args.json.write_text(json.dumps(result, indent=2, default=float))


if __name__ == "__main__":
    main()
