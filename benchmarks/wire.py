"""Bytes on the wire per actor and per shard: what a cluster's network carries.

Builds one real actor, its replay shard and the learner's network from a composed experiment
(``experiment=pong`` by default, the defaults a user gets), acts for ``--steps`` vector steps
and measures, with the serialisation Ray uses for these objects (pickle protocol 5, numpy
buffers included):

- bytes pushed per env step (actor to shard: the n-step transitions, or frames and indices with
  ``replay.frame_dedup``);
- bytes of one weights version (parameter server to actor node) and env steps between pulls
  (``actors.sync_every``);
- bytes per sampled transition (shard to learner) and per priority update (learner to shard).

Rates per second follow from a run's env steps and samples per second (the throughput and
learner benchmarks); docs/scaling.md multiplies them out for a cluster.

    python benchmarks/wire.py --json docs/figures/wire_pong.json
"""

from __future__ import annotations

import argparse
import json
import pickle
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from provenance import provenance


def nbytes(obj: Any) -> int:
    """Serialised size of ``obj`` as Ray ships a numpy-holding object (pickle protocol 5)."""
    return len(pickle.dumps(obj, protocol=5))


def measure(experiment: str | None, overrides: list[str], steps: int) -> dict[str, Any]:
    """The wire figures of one actor and shard of ``experiment`` (see module docstring)."""
    from hydra import compose, initialize_config_dir

    from apex_dqn.cli.train import CONF_DIR, to_config
    from apex_dqn.envs.factory import inspect_env
    from apex_dqn.roles import build

    with initialize_config_dir(config_dir=CONF_DIR, version_base="1.3"):
        group = [f"experiment={experiment}"] if experiment else []
        cfg = to_config(compose("config", overrides=[*group, *overrides]))
    info = inspect_env(cfg.env)
    learner = build.learner_spec(cfg, info).build()
    weights = learner.get_weights()
    actor = build.actor_spec(cfg, info, 0).build()
    actor.set_weights(weights, 0)
    replay = build.shard_spec(cfg, info, 0, None).build()
    chunk = max(1, cfg.actors.push_every // cfg.actors.envs_per_actor)  # vector steps per push
    actor.run_steps(2 * chunk)  # warm up
    pushed_bytes, pushed, env_steps, array_bytes, pushes = 0, 0, 0, 0, 0
    started = time.perf_counter()
    while env_steps < steps:
        batches, report = actor.run_steps(chunk)
        env_steps += report.env_steps
        for batch in batches:
            pushed_bytes += nbytes(batch)
            pushed += len(batch)
            pushes += 1
            array_bytes += sum(a.nbytes for a in vars(batch).values() if isinstance(a, np.ndarray))
            replay.add(batch)
    seconds = time.perf_counter() - started
    actor.close()
    batch_size = cfg.learner.batch_size
    sample = replay.sample(min(batch_size, len(replay)), cfg.replay.beta_start)
    n = len(sample.ids_B)
    priorities = (sample.ids_B, np.ones(n, dtype=np.float32))
    return {
        "experiment": experiment,
        "overrides": overrides,
        "env_id": cfg.env.id,
        "frame_dedup": build.frame_storage(cfg),
        "env_steps": env_steps,
        "transitions_pushed": pushed,
        "push_bytes_per_env_step": pushed_bytes / env_steps,
        "push_bytes_per_transition": pushed_bytes / max(1, pushed),
        "push_every": cfg.actors.push_every,
        "push_array_bytes_per_transition": array_bytes / max(1, pushed),  # without pickling
        "pushes": pushes,
        "push_overhead_bytes_per_push": (pushed_bytes - array_bytes) / max(1, pushes),
        "weights_bytes": nbytes(weights),
        "weights_values": sum(int(np.asarray(w).size) for w in weights.values()),
        "sync_every_env_steps": cfg.actors.sync_every,
        "publish_every_updates": cfg.learner.publish_every,
        "sample_bytes_per_transition": nbytes(sample) / n,
        "priority_bytes_per_transition": nbytes(priorities) / n,
        "batch_size": batch_size,
        "actor_env_steps_per_s_here": env_steps / seconds,
    }


def table(r: dict[str, Any]) -> str:
    """The figures as a markdown table."""
    kib = 1024
    sample_kib = r["sample_bytes_per_transition"] / kib
    rows = [
        ("pushed per env step (actor to shard)", f"{r['push_bytes_per_env_step'] / kib:.2f} KiB"),
        ("pushed per transition", f"{r['push_bytes_per_transition'] / kib:.2f} KiB"),
        ("one weights version (to each actor node)", f"{r['weights_bytes'] / kib**2:.2f} MiB"),
        ("env steps between an actor's pulls", f"{r['sync_every_env_steps']}"),
        (
            "sampled, per transition (shard to learner)",
            f"{sample_kib:.2f} KiB",
        ),
        ("priority update, per transition", f"{r['priority_bytes_per_transition']:.1f} B"),
        (
            "actor env steps/s while measuring (this machine)",
            f"{r['actor_env_steps_per_s_here']:.0f}",
        ),
    ]
    dedup = "on" if r["frame_dedup"] else "off"
    head = f"| {r['env_id']} (frame dedup {dedup}) | bytes |\n|---|---|\n"
    return head + "\n".join(f"| {a} | {b} |" for a, b in rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--experiment", default="pong", help="'' for the defaults (CartPole)")
    parser.add_argument("--steps", type=int, default=4000, help="env steps measured")
    parser.add_argument("--json", type=Path, default=None)
    parser.add_argument("overrides", nargs="*", help="key=value overrides (dotted config keys)")
    args = parser.parse_args()
    result = measure(args.experiment, args.overrides, args.steps)
    # As typed, from wherever it was run: the figures depend only on the config.
    result["command"] = " ".join(["python", sys.argv[0], *sys.argv[1:]])
    print(table(result))
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        result["provenance"] = provenance()
        args.json.write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
