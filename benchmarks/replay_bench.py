"""Prioritized replay throughput: apex-dqn's numpy sum-tree replay against cpprb and torchrl.

The same workload, in the same process and run, for every implementation: fill to capacity with
batches of 256 (add), then repeat sample(512), update_priorities(512), and sample + update, each
for ``--seconds``. CartPole-sized transitions (4 float32) at 100,000 and 1,000,000; Atari-sized
ones (4x84x84 uint8, stored naively, obs and next obs) at ``--atari-capacity``. Every figure is
transitions per second (median of ``--repeats`` timed blocks). With ``--ray`` it also measures one
replay shard actor fed by two pushing tasks and drained by a sampler (Atari-sized batches).

    python benchmarks/replay_bench.py --json replay.json        # needs: pip install -e '.[bench]'
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from provenance import provenance

ADD_BATCH = 256
SAMPLE_BATCH = 512
ALPHA, BETA = 0.6, 0.4


def _batch(n: int, obs_shape: tuple[int, ...], dtype: Any, rng: np.random.Generator) -> dict:
    obs = (
        rng.integers(0, 255, (n, *obs_shape), dtype=np.uint8)
        if dtype == np.uint8
        else rng.normal(size=(n, *obs_shape)).astype(np.float32)
    )
    return {
        "obs": obs,
        "next_obs": obs,
        "action": rng.integers(0, 4, n),
        "ret": rng.normal(size=n).astype(np.float32),
        "discount": np.full(n, 0.97, np.float32),
        "done": np.zeros(n, bool),
        "priority": rng.uniform(0.01, 2.0, n).astype(np.float32),
    }


def _transition_batch(b: dict) -> Any:
    """The workload's columns as apex-dqn's ``TransitionBatch``."""
    from apex_dqn.core.types import TransitionBatch

    return TransitionBatch(
        obs_B=b["obs"],
        action_B=b["action"],
        return_B=b["ret"],
        discount_B=b["discount"],
        next_obs_B=b["next_obs"],
        done_B=b["done"],
        priority_B=b["priority"],
    )  # no behaviour fields: learner.actor_correction is off by default


class Ours:
    name = "apex_dqn"

    def __init__(self, capacity: int, obs_shape: tuple[int, ...], dtype: Any) -> None:
        from apex_dqn.replay.prioritized import PrioritizedReplay

        self.r = PrioritizedReplay(
            capacity=capacity, obs_shape=obs_shape, obs_dtype=dtype, alpha=ALPHA, seed=0
        )

    def add(self, b: dict) -> None:

        self.r.add(_transition_batch(b))

    def sample(self) -> Any:
        s = self.r.sample(SAMPLE_BATCH, BETA)
        return s.ids_B

    def update(self, ids: Any, p: np.ndarray) -> None:
        self.r.update_priorities(ids, p)


class Cpprb:
    name = "cpprb"

    def __init__(self, capacity: int, obs_shape: tuple[int, ...], dtype: Any) -> None:
        import cpprb

        env = {
            "obs": {"shape": obs_shape, "dtype": dtype},
            "next_obs": {"shape": obs_shape, "dtype": dtype},
            "action": {"dtype": np.int64},
            "ret": {"dtype": np.float32},
            "discount": {"dtype": np.float32},
            "done": {"dtype": np.bool_},
        }
        self.r = cpprb.PrioritizedReplayBuffer(capacity, env, alpha=ALPHA)

    def add(self, b: dict) -> None:
        fields = {k: v for k, v in b.items() if k != "priority"}
        self.r.add(**fields, priorities=b["priority"])

    def sample(self) -> Any:
        return self.r.sample(SAMPLE_BATCH, beta=BETA)["indexes"]

    def update(self, ids: Any, p: np.ndarray) -> None:
        self.r.update_priorities(ids, p)


class TorchRL:
    name = "torchrl"

    def __init__(self, capacity: int, obs_shape: tuple[int, ...], dtype: Any) -> None:
        from torchrl.data import LazyTensorStorage, PrioritizedReplayBuffer

        self.r = PrioritizedReplayBuffer(
            alpha=ALPHA,
            beta=BETA,
            storage=LazyTensorStorage(capacity),
            batch_size=SAMPLE_BATCH,
        )

    def add(self, b: dict) -> None:
        import torch
        from tensordict import TensorDict

        n = len(b["action"])
        td = TensorDict({k: torch.from_numpy(v) for k, v in b.items()}, batch_size=[n])
        idx = self.r.extend(td)
        self.r.update_priority(idx, td["priority"])

    def sample(self) -> Any:
        _, info = self.r.sample(return_info=True)
        return info["index"]

    def update(self, ids: Any, p: np.ndarray) -> None:
        import torch

        self.r.update_priority(ids, torch.from_numpy(p))


def _rate(fn: Callable[[], int], seconds: float, repeats: int) -> float:
    """Median over ``repeats`` blocks of ~seconds/repeats each: items per second."""
    rates = []
    for _ in range(repeats):
        items, start = 0, time.perf_counter()
        while (elapsed := time.perf_counter() - start) < seconds / repeats:
            items += fn()
        rates.append(items / elapsed)
    return statistics.median(rates)


def bench(cls: type, capacity: int, obs_shape: tuple, dtype: Any, args: Any) -> dict:
    rng = np.random.default_rng(0)
    replay = cls(capacity, obs_shape, dtype)
    pool = [_batch(ADD_BATCH, obs_shape, dtype, rng) for _ in range(8)]
    # Fill untimed first: the first pass over fresh memory measures the kernel's page faults,
    # not the replay; a long run lives in the full, overwriting regime measured below.
    for k in range(-(-capacity // ADD_BATCH)):
        replay.add(pool[k % len(pool)])
    counter = iter(range(1 << 62))

    def add() -> int:
        replay.add(pool[next(counter) % len(pool)])
        return ADD_BATCH

    add_per_s = _rate(add, args.seconds, args.repeats)
    prio = rng.uniform(0.01, 2.0, SAMPLE_BATCH).astype(np.float32)
    ids = replay.sample()

    def sample() -> int:
        replay.sample()
        return SAMPLE_BATCH

    def update() -> int:
        replay.update(ids, prio)
        return SAMPLE_BATCH

    def both() -> int:
        replay.update(replay.sample(), prio)
        return SAMPLE_BATCH

    return {
        "add_per_s": add_per_s,
        "sample_per_s": _rate(sample, args.seconds, args.repeats),
        "update_per_s": _rate(update, args.seconds, args.repeats),
        "sample_update_per_s": _rate(both, args.seconds, args.repeats),
    }


def ray_shard_rate(seconds: float, capacity: int, frames: bool = False) -> dict[str, float]:
    """One ReplayShardHost actor through Ray, Atari-sized batches: transitions/s it accepts
    from two pushing tasks while a third draws batches of 512 from it (after a warm-up fill).
    With ``frames`` the shard is a frame replay fed actor-like ``FrameBatch``es (each pusher
    its own stream, cycling through 32 consecutive pushes)."""
    import ray

    from apex_dqn.roles.build import ShardSpec
    from apex_dqn.runtime.hosts import ReplayShardHost

    ray.init(address="local", num_cpus=2, include_dashboard=False, logging_level="ERROR")
    try:
        shard = ray.remote(num_cpus=0)(ReplayShardHost).remote(
            spec=ShardSpec(
                capacity=capacity,
                obs_shape=(4, 84, 84),
                obs_dtype="uint8",
                frames=frames,
                alpha=ALPHA,
                priority_eps=1e-6,
                seed=0,
                behaviour=False,
                snapshot_path=None,
            )
        )
        rng = np.random.default_rng(1)
        # numpy arrays in the object store: read zero-copy by the shard
        if frames:
            refs = [
                [ray.put(b) for b in _frame_pushes(32 * ADD_BATCH, rng, stream=k)] for k in (1, 2)
            ]
        else:
            batch = _transition_batch(_batch(ADD_BATCH, (4, 84, 84), np.uint8, rng))
            refs = [[ray.put(batch)]] * 2
        fill = -(-capacity // ADD_BATCH)
        ray.get([shard.add.remote(refs[0][i % len(refs[0])]) for i in range(fill)])

        @ray.remote(num_cpus=0)
        def push(shard: Any, refs: list, seconds: float) -> int:
            sent, pending, end = 0, [], time.time() + seconds
            while time.time() < end:
                pending.append(shard.add.remote(refs[(sent // ADD_BATCH) % len(refs)]))
                sent += ADD_BATCH
                if len(pending) > 4:
                    _, pending = ray.wait(pending, num_returns=len(pending) - 4)
            ray.get(pending)
            return sent

        @ray.remote(num_cpus=0)
        def draw(shard: Any, seconds: float) -> int:
            got, end = 0, time.time() + seconds
            while time.time() < end:
                samples = ray.get(shard.sample_many.remote(SAMPLE_BATCH, BETA, 1))
                got += len(samples[0].ids_B)
            return got

        start = time.time()
        out = ray.get(
            [push.remote(shard, refs[k], seconds) for k in range(2)] + [draw.remote(shard, seconds)]
        )
        elapsed = time.time() - start
        return {"accepted_per_s": (out[0] + out[1]) / elapsed, "served_per_s": out[2] / elapsed}
    finally:
        ray.shutdown()


def _frame_pushes(
    total: int,
    rng: np.random.Generator,
    envs: int = 8,
    push: int = 256,
    n: int = 3,
    stack: int = 4,
    stream: int = 7,
) -> Any:
    """Actor-like pushes of ``total`` transitions as FrameBatches: ``envs`` frame streams of
    consecutive steps, each push holding push / envs steps of every env and repeating the
    frames its first stacks share with the previous push (as an actor's pushes do)."""
    from apex_dqn.core.types import FrameBatch

    pool = rng.integers(0, 255, (64, 84, 84), dtype=np.uint8)
    per_env = push // envs
    offsets = np.arange(stack)
    for start in range(0, total, push):
        t0 = start // envs
        steps_T = np.arange(t0, t0 + per_env)
        env_E = np.arange(envs)[:, None, None] << 40
        # Key of the frame of env e at step t: (e << 40) + t; stacks clamp at step 0.
        obs = env_E + np.maximum(steps_T[None, :, None] - (stack - 1) + offsets, 0)
        nxt = env_E + np.maximum(steps_T[None, :, None] + n - (stack - 1) + offsets, 0)
        obs_keys, next_keys = obs.reshape(-1, stack), nxt.reshape(-1, stack)
        keys_F, inverse = np.unique(np.concatenate([obs_keys, next_keys]), return_inverse=True)
        inverse = inverse.reshape(2, -1, stack)
        rows = len(obs_keys)
        yield FrameBatch(
            frames_F=pool[keys_F % len(pool)],
            keys_F=keys_F,
            stream=stream,
            obs_idx_BS=inverse[0],
            next_idx_BS=inverse[1],
            action_B=rng.integers(0, 6, rows),
            return_B=rng.normal(size=rows).astype(np.float32),
            discount_B=np.full(rows, 0.97, np.float32),
            done_B=np.zeros(rows, bool),
            priority_B=rng.uniform(0.01, 2.0, rows).astype(np.float32),
        )


def atari_frames_memory(capacity: int, seconds: float, repeats: int) -> dict[str, float]:
    """Fill a frame replay of ``capacity`` Atari transitions in a fresh process; its RSS."""
    import psutil

    from apex_dqn.replay import FramePrioritizedReplay

    rss0 = psutil.Process().memory_info().rss
    replay = FramePrioritizedReplay(capacity=capacity, obs_shape=(4, 84, 84), seed=0)
    rng = np.random.default_rng(0)
    start = time.perf_counter()
    for batch in _frame_pushes(capacity + capacity // 4, rng):  # wrap the ring once
        replay.add(batch)
    fill_s = time.perf_counter() - start
    rss = psutil.Process().memory_info().rss

    def both() -> int:
        sample = replay.sample(SAMPLE_BATCH, BETA)
        replay.update_priorities(sample.ids_B, rng.uniform(0.01, 2.0, SAMPLE_BATCH))
        return SAMPLE_BATCH

    rate = _rate(both, seconds, repeats)
    return {
        "capacity": capacity,
        "rss_gib": rss / 2**30,
        "replay_gib": (rss - rss0) / 2**30,
        "stats_bytes_gib": replay.stats().bytes / 2**30,
        "frames_per_transition": replay._frames_added / replay.stats().added,
        "naive_gib": capacity * 2 * 4 * 84 * 84 / 2**30,
        "add_per_s": replay.stats().added / fill_s,
        "sample_update_per_s": rate,
    }


def _frames_run(args: Any) -> dict[str, float]:
    """``atari_frames_memory`` in a child process (a clean RSS), printed as a table row."""
    import subprocess
    import sys

    cmd = [sys.executable, __file__, "--_frames-child", str(args.atari_frames),
           "--seconds", str(args.seconds), "--repeats", str(args.repeats)]  # fmt: skip
    out = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout
    res = json.loads(out.strip().splitlines()[-1])
    print(
        "| Atari frame replay | transitions | process RSS | replay's share | naive storage "
        "| frames per transition | add/s | sample+update/s |\n| --- | ---: | ---: | ---: | ---: "
        f"| ---: | ---: | ---: |\n| apex_dqn (frames once) | {res['capacity']:,} | "
        f"{res['rss_gib']:.2f} GiB | {res['replay_gib']:.2f} GiB | {res['naive_gib']:.1f} GiB | "
        f"{res['frames_per_transition']:.3f} | {res['add_per_s']:,.0f} | "
        f"{res['sample_update_per_s']:,.0f} |\n",
        flush=True,
    )
    return res


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--capacities", type=int, nargs="+", default=[100_000, 1_000_000])
    parser.add_argument("--atari-capacity", type=int, default=20_000)
    parser.add_argument("--seconds", type=float, default=3.0, help="per measured operation")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--ray", action="store_true", help="also measure a shard through Ray")
    parser.add_argument("--json", type=Path, default=None)
    parser.add_argument(
        "--atari-frames",
        type=int,
        default=0,
        help="also fill a frame replay of this many Atari transitions in a fresh process and "
        "report its resident memory (1000000: the 8 GiB target)",
    )
    parser.add_argument("--frames-only", action="store_true", help="only the frame memory run")
    parser.add_argument("--_frames-child", type=int, default=0, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args._frames_child:
        print(json.dumps(atari_frames_memory(args._frames_child, args.seconds, args.repeats)))
        return
    frames = _frames_run(args) if args.atari_frames else None
    if args.frames_only:
        if args.json:
            figures = {"atari_frames": frames, "provenance": provenance()}
            args.json.write_text(json.dumps(figures, indent=2) + "\n")
        return

    impls = [Ours, Cpprb, TorchRL]
    workloads = [("cartpole", c, (4,), np.float32) for c in args.capacities]
    workloads.append(("atari", args.atari_capacity, (4, 84, 84), np.uint8))
    results: dict[str, dict] = {}
    unavailable: dict[str, str] = {}
    rows = []
    for obs_kind, capacity, shape, dtype in workloads:
        key = f"{obs_kind}@{capacity}"
        results[key] = {}
        for cls in impls:
            if cls.name in unavailable:
                continue
            try:
                res = bench(cls, capacity, shape, dtype, args)
            except Exception as exc:  # a library missing or broken here: say so, go on
                unavailable[cls.name] = f"{type(exc).__name__}: {str(exc).splitlines()[0][:160]}"
                continue
            results[key][cls.name] = res
        best_other = max(
            (r["sample_update_per_s"] for n, r in results[key].items() if n != "apex_dqn"),
            default=None,
        )
        for name, r in results[key].items():
            ratio = "" if not best_other else f"{r['sample_update_per_s'] / best_other:.2f}"
            rows.append(
                f"| {key} | {name} | {r['add_per_s']:,.0f} | {r['sample_per_s']:,.0f} | "
                f"{r['update_per_s']:,.0f} | {r['sample_update_per_s']:,.0f} | {ratio} |"
            )
    print(
        "| workload | impl | add/s | sample/s | update/s | sample+update/s "
        "| sample+update vs best other |"
    )
    print("| --- | --- | ---: | ---: | ---: | ---: | ---: |")
    print("\n".join(rows))
    for name, why in unavailable.items():
        print(f"\n{name}: not measured ({why})")
    ray_rates = ray_shard_rate(args.seconds * 2, args.atari_capacity) if args.ray else None
    ray_frames = (
        ray_shard_rate(args.seconds * 2, args.atari_capacity, frames=True) if args.ray else None
    )
    for label, rates in (("stacked", ray_rates), ("frame replay", ray_frames)):
        if rates is not None:
            print(
                f"\none shard actor through Ray, Atari-sized transitions ({label}): accepts "
                f"{rates['accepted_per_s']:,.0f}/s from 2 pushers while serving "
                f"{rates['served_per_s']:,.0f}/s to a sampler"
            )
    big = f"cartpole@{max(args.capacities)}"
    figures = {
        "capacity": max(args.capacities),
        "results": results.get(big, {}),
        "all_results": results,
        "unavailable": unavailable,
        "atari_1m_rss_gib": (
            frames["rss_gib"] if frames and frames["capacity"] == 1_000_000 else None
        ),
        "atari_frames": frames,
        "ray_shard_transitions_per_s": None if ray_rates is None else ray_rates["accepted_per_s"],
        "ray_shard_served_per_s": None if ray_rates is None else ray_rates["served_per_s"],
        "ray_frame_shard": ray_frames,
    }
    if args.json:
        figures["provenance"] = provenance()
        args.json.write_text(json.dumps(figures, indent=2) + "\n")


if __name__ == "__main__":
    main()
