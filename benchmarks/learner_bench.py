"""Learner throughput with the Nature CNN dueling network on Atari-sized batches.

(a) step only: ``Learner.step`` on random batches already on the device, so the figure is
    the update itself (forward of 2B frames stacks, target forward, backward, Adam).
(b) full path: replay shard actors filled with random Atari-sized transitions, and the Ray
    ``LearnerHost`` sampling from them with requests in flight,
    staging them (pinned memory and a side stream on CUDA) and updating; priorities go back to
    the shards. This is what a run's learner does, minus the actors.

(c) with ``--learners 1,2,4``: the full path with K learner actors in one torch.distributed
    group (``learner.num_learners``), all called together; samples/s counts the batches every
    learner stepped on (an update averages up to K of them).

Each figure is the median over ``--repeats`` timed windows after a warm-up; variants with bf16
autocast (``--amp``), ``torch.compile`` (``--compile``) and the channels-last layout
(``--channels-last``: ``learner.channels_last=true``, the networks in NHWC, oneDNN's preferred
layout on CPU; every other variant sets it false) are measured in the same run, each at every
thread count of ``--threads``. ``--profile`` adds where one eager fp32 update's time goes:
torch.profiler's operators by self CPU time.

    python benchmarks/learner_bench.py --json learner.json
    python benchmarks/learner_bench.py --device cuda --batch-size 512 --shards 4 --amp --compile
    python benchmarks/learner_bench.py --device cpu --batch-size 64 --learners 1,2,4
    python benchmarks/learner_bench.py --device cpu --batch-size 64 --skip-full-path \\
        --threads 1,2 --channels-last --compile --profile --json learner_cpu.json
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from apex_dqn.config import (
    ActorsConfig,
    AtariConfig,
    Config,
    EnvConfig,
    LearnerConfig,
    NetworkConfig,
    ReplayConfig,
)
from apex_dqn.envs.factory import EnvInfo

sys.path.insert(0, str(Path(__file__).resolve().parent))
from provenance import provenance

OBS_SHAPE = (4, 84, 84)
NUM_ACTIONS = 6


def _config(
    args: argparse.Namespace,
    *,
    amp: bool = False,
    compile: bool = False,
    num_learners: int = 1,
    channels_last: bool = False,
) -> Config:
    per_shard = max(args.capacity // args.shards, args.batch_size)
    return Config(
        env=EnvConfig(id="ALE/Pong-v5", atari=AtariConfig()),
        network=NetworkConfig(torso="nature"),
        actors=ActorsConfig(num_actors=1, min_replay_ratio=0.0),
        replay=ReplayConfig(
            capacity=per_shard * args.shards,
            num_shards=args.shards,
            min_size_to_learn=args.batch_size,
            num_cpus=0.0,
            # Random transitions share no frames: the shards store stacks as they come. The
            # learner's side is the same either way (a frame replay rebuilds the same stacks).
            frame_dedup=False,
        ),
        learner=LearnerConfig(
            batch_size=args.batch_size,
            device=args.device,
            amp=amp,
            compile=compile,
            # Explicit, so that every variant but channels-last keeps the NCHW layout (auto
            # would choose NHWC on a CPU).
            channels_last=channels_last,
            max_replay_ratio=0.0,  # no actors: the learner may sample as often as it can
            prefetch=args.prefetch,
            batches_per_request=args.batches_per_request,
            publish_every=100,
            target_update_period=2500,
            num_cpus=0.0,
            num_learners=num_learners,
            # Learners sharing one GPU cannot use NCCL (one GPU per rank): gloo there.
            dist_backend="gloo" if num_learners > _gpu_count() else "auto",
        ),
    )


def _info() -> EnvInfo:
    return EnvInfo(obs_shape=OBS_SHAPE, obs_dtype="uint8", num_actions=NUM_ACTIONS,
                   reward_threshold=None)  # fmt: skip


def _random_batch(n: int, rng: np.random.Generator) -> Any:
    from apex_dqn.core.types import TransitionBatch

    return TransitionBatch(
        obs_B=rng.integers(0, 255, (n, *OBS_SHAPE), dtype=np.uint8),
        action_B=rng.integers(0, NUM_ACTIONS, n),
        return_B=rng.normal(size=n).astype(np.float32),
        discount_B=np.full(n, 0.99**3, np.float32),
        next_obs_B=rng.integers(0, 255, (n, *OBS_SHAPE), dtype=np.uint8),
        done_B=rng.random(n) < 0.01,
        priority_B=rng.uniform(0.01, 2.0, n).astype(np.float32),
    )  # no behaviour fields: learner.actor_correction is off


def _timed(fn: Any, *, seconds: float, repeats: int) -> float:
    """Median calls per second of ``fn`` over ``repeats`` windows of about ``seconds``."""
    rates = []
    for _ in range(repeats):
        start, calls = time.perf_counter(), 0
        while time.perf_counter() - start < seconds:
            calls += fn()
        rates.append(calls / (time.perf_counter() - start))
    return statistics.median(rates)


def _stepper(
    args: argparse.Namespace, *, amp: bool, compile: bool, channels_last: bool = False
) -> Any:
    """A learner and four staged random batches: a function that makes one update."""
    import torch

    from apex_dqn.roles import build

    cfg = _config(args, amp=amp, compile=compile, channels_last=channels_last)
    learner = build.learner_spec(cfg, _info()).build()
    rng = np.random.default_rng(0)
    staged = [
        learner.stage(_random_batch(args.batch_size, rng), np.ones(args.batch_size, np.float32))
        for _ in range(4)
    ]
    if learner.device.type == "cuda":
        torch.cuda.synchronize()
    counter = iter(range(1 << 62))

    def one() -> int:
        learner.step(staged[next(counter) % len(staged)])
        return 1

    for _ in range(args.warmup):
        one()
    return one


def step_only(
    args: argparse.Namespace, *, amp: bool, compile: bool, channels_last: bool = False
) -> float:
    """Samples per second of ``Learner.step`` on batches already on the device."""
    one = _stepper(args, amp=amp, compile=compile, channels_last=channels_last)
    updates = _timed(one, seconds=args.seconds, repeats=args.repeats)
    return updates * args.batch_size


def profile_step(args: argparse.Namespace, updates: int = 20, top: int = 12) -> list[dict]:
    """Where an eager fp32 update's time goes: the ``top`` operators by self CPU time over
    ``updates`` updates, in ms per update and as a share of the total."""
    from torch.profiler import ProfilerActivity, profile

    one = _stepper(args, amp=False, compile=False)
    with profile(activities=[ProfilerActivity.CPU]) as prof:
        for _ in range(updates):
            one()
    events = [e for e in prof.key_averages() if e.self_cpu_time_total > 0]
    total = sum(e.self_cpu_time_total for e in events)
    events.sort(key=lambda e: e.self_cpu_time_total, reverse=True)
    return [
        {
            "op": e.key,
            "ms_per_update": round(e.self_cpu_time_total / 1000 / updates, 3),
            "share": round(e.self_cpu_time_total / total, 4),
        }
        for e in events[:top]
    ]


def full_path(
    args: argparse.Namespace, *, amp: bool, compile: bool, num_learners: int = 1
) -> dict[str, float]:
    """Samples per second through replay shard actors and ``num_learners`` Ray learner hosts
    (one group when more than one)."""
    import ray

    from apex_dqn.roles import build
    from apex_dqn.roles.parameter_server import ParameterServer
    from apex_dqn.runtime.hosts import LearnerHost, Peers, ReplayShardHost
    from apex_dqn.runtime.ray_runtime import form_learner_group

    cfg = _config(args, amp=amp, compile=compile, num_learners=num_learners)
    info = _info()
    tag = f"bench{os.getpid()}{int(amp)}{int(compile)}k{num_learners}"
    peers = Peers(
        parameter_server=f"{tag}-ps",
        shards=tuple(f"{tag}-shard{s}" for s in range(args.shards)),
        namespace="apex-dqn-bench",
    )
    ps = (
        ray.remote(num_cpus=0)(ParameterServer)
        .options(name=peers.parameter_server, namespace=peers.namespace)
        .remote()
    )
    shard_cls = ray.remote(num_cpus=0)(ReplayShardHost)
    shards = [
        shard_cls.options(name=name, namespace=peers.namespace).remote(
            spec=build.shard_spec(cfg, info, s, None)
        )
        for s, name in enumerate(peers.shards)
    ]
    rng = np.random.default_rng(1)
    per_shard = cfg.replay.capacity // args.shards
    chunk = _random_batch(256, rng)
    for shard in shards:
        ray.get([shard.add.remote(chunk) for _ in range(max(1, per_shard // 256))])
    cuda = cfg.learner.device.startswith("cuda") or _gpu_count() > 0
    gpus = min(1.0, _gpu_count() / num_learners) if cuda else 0.0
    learner_cls = ray.remote(num_cpus=0, num_gpus=gpus)(LearnerHost)
    learners = [
        learner_cls.remote(spec=build.learner_spec(cfg, info), peers=peers, seed=0, rank=rank)
        for rank in range(num_learners)
    ]
    if num_learners > 1:
        form_learner_group(learners)
    device = ray.get(learners[0].device.remote())

    def learned(call: str, *call_args: float) -> int:
        """Batches all learners have stepped on, after calling ``call`` on each together."""
        reports = ray.get([getattr(h, call).remote(*call_args) for h in learners])
        return sum(r.batches_learned for r in reports)

    for _ in range(max(1, args.warmup // 10)):
        learned("run_for", 1.0)
    rates = []
    for _ in range(args.repeats):
        before = learned("status")
        start = time.perf_counter()
        batches = learned("run_for", args.seconds) - before
        rates.append(batches / (time.perf_counter() - start))
    for handle in [*learners, ps, *shards]:
        ray.kill(handle)
    return {"device": device, "samples_per_s": statistics.median(rates) * args.batch_size}


def _gpu_count() -> int:
    import torch

    return torch.cuda.device_count() if torch.cuda.is_available() else 0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--device", default="auto", help="auto, cpu or cuda")
    parser.add_argument("--batch-size", type=int, default=512)
    parser.add_argument("--seconds", type=float, default=5.0, help="length of a timed window")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--warmup", type=int, default=10, help="untimed updates first")
    parser.add_argument("--shards", type=int, default=2)
    parser.add_argument("--capacity", type=int, default=20_000, help="transitions in all shards")
    parser.add_argument("--prefetch", type=int, default=4)
    parser.add_argument("--batches-per-request", type=int, default=2)
    parser.add_argument("--amp", action="store_true", help="also measure bf16 autocast")
    parser.add_argument("--compile", action="store_true", help="also measure torch.compile")
    parser.add_argument(
        "--skip-full-path", action="store_true", help="(b) only with --learners, (a) always"
    )
    parser.add_argument(
        "--learners",
        default="",
        help="comma-separated learner counts for the full path, e.g. 1,2,4",
    )
    parser.add_argument(
        "--channels-last", action="store_true", help="also measure the NHWC layout (step only)"
    )
    parser.add_argument(
        "--threads", default="", help="torch thread counts for step only, e.g. 1,2 (default: as is)"
    )
    parser.add_argument("--profile", action="store_true", help="also the top operators")
    parser.add_argument("--json", type=Path, help="write the figures here")
    args = parser.parse_args()
    import torch

    variants = [("eager fp32", False, False, False)]
    if args.amp:
        variants.append(("bf16 autocast", True, False, False))
    if args.compile:
        variants.append(("torch.compile", False, True, False))
    if args.channels_last:
        variants.append(("channels-last fp32", False, False, True))
    if args.amp and args.channels_last:
        # What amp=auto and channels_last=auto give a CPU learner with native bf16.
        variants.append(("channels-last bf16 autocast", True, False, True))
    thread_counts = [int(t) for t in args.threads.split(",") if t.strip()] or [
        torch.get_num_threads()
    ]
    rows = []
    # Every variant at one thread count, then the next: neighbours in time are compared.
    for threads in thread_counts:
        torch.set_num_threads(threads)
        for name, amp, comp, nhwc in variants:
            step = step_only(args, amp=amp, compile=comp, channels_last=nhwc)
            rows.append(
                {"variant": name, "amp": amp, "compile": comp, "channels_last": nhwc,
                 "threads": threads, "step_only": step}
            )  # fmt: skip
            print(f"step only, {name}, {threads} thread(s): {step:,.0f} samples/s", flush=True)
    torch.set_num_threads(thread_counts[-1])
    ops = profile_step(args) if args.profile else []

    full: dict[str, Any] = {}
    learners: list[dict[str, float]] = []
    if not args.skip_full_path or args.learners:
        import ray

        from apex_dqn.runtime.ray_runtime import init_ray

        init_ray(Config().ray)
        for row in [r for r in rows if not r["channels_last"]] if not args.skip_full_path else []:
            full = full_path(args, amp=row["amp"], compile=row["compile"])
            row["full_path"] = full["samples_per_s"]
            print(f"full path, {row['variant']}: {row['full_path']:,.0f} samples/s", flush=True)
        for k in [int(x) for x in args.learners.split(",") if x.strip()]:
            rate = full_path(args, amp=False, compile=False, num_learners=k)["samples_per_s"]
            learners.append({"num_learners": k, "samples_per_s": rate})
            print(f"full path, {k} learner(s): {rate:,.0f} samples/s", flush=True)
        ray.shutdown()

    from apex_dqn.algo.torch_compat import resolve_device

    device = str(resolve_device(args.device))
    if device.startswith("cuda"):
        import torch

        device = f"{device} ({torch.cuda.get_device_name()})"
    print(f"\n| learner ({device}, batch {args.batch_size}, Nature CNN dueling) | threads "
          "| step only: samples/s | updates/s | full path: samples/s | updates/s |")  # fmt: skip
    print("| --- | --- | --- | --- | --- | --- |")
    for row in rows:
        fp = row.get("full_path")
        fp_text = f"{fp:,.0f} | {fp / args.batch_size:,.1f}" if fp else "- | -"
        print(f"| {row['variant']} | {row['threads']} | {row['step_only']:,.0f} | "
              f"{row['step_only'] / args.batch_size:,.1f} | {fp_text} |")  # fmt: skip
    if ops:
        print(f"\n| operator (eager fp32, {thread_counts[-1]} threads) | ms per update | share |")
        print("| --- | --- | --- |")
        for op in ops:
            print(f"| {op['op']} | {op['ms_per_update']:.2f} | {op['share']:.1%} |")
    if learners:
        one = learners[0]["samples_per_s"] if learners[0]["num_learners"] == 1 else None
        print(f"\n| learners ({device}, batch {args.batch_size} each) | samples/s | vs 1 |")
        print("| --- | --- | --- |")
        for entry in learners:
            ratio = f"{entry['samples_per_s'] / one:.2f}x" if one else "-"
            print(f"| {entry['num_learners']} | {entry['samples_per_s']:,.0f} | {ratio} |")
    if args.json:
        base = rows[0]
        result = {
            "device": device,
            "batch_size": args.batch_size,
            "step_only_samples_per_s": base["step_only"],
            "full_path_samples_per_s": base.get("full_path"),
            "variants": rows,
            "shards": args.shards,
            "profile": ops,
            "provenance": provenance(),
        }
        if learners:
            result["learners"] = learners
        args.json.write_text(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
