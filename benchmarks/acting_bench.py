"""Acting forward passes of the CNN Q-networks on the CPU: TorchScript trace, eager, torch.compile.

What an actor or the evaluator does per step with a convolutional torso (``TorchQ.q_values``):
``torch.as_tensor`` on a batch of uint8 observations, one forward pass, ``.float().numpy()``.
Timed for 16 Pong stacks (torso "nature", 4x84x84, 6 actions) and 16 MinAtar Breakout grids
(torso "minatar", 4x10x10, 3 actions), dueling heads, for these variants:

(a) ``jit.trace``: a ``torch.jit.trace`` of the module under ``torch.inference_mode`` (what
    ``TorchQ`` ran until TorchScript was deprecated);
(b) ``eager``: the module itself under ``torch.inference_mode``;
(c) ``eager channels_last``: (b) with the module and the input in channels-last memory format;
(d) ``torch.compile``: ``torch.compile(module)`` (mode default; kernels that read the thread
    count when they run, so one compile serves every thread count). Its one-off costs are
    reported: the first call and the first at batch 8 (from an empty inductor cache), and the
    CPU time of importing ``torch._dynamo``, which it needs.

With bf16 autocast too (each variant again, "+ bf16") only where the CPU has native bf16
(``avx512_bf16`` in /proc/cpuinfo; ``--bf16`` forces it): emulated bf16 is slower than float32.

torch runs with 1 thread (what Ray gives an actor with num_cpus <= 1) and with 2. Each round
times every variant for ``--window`` seconds, variants alternating; figures are medians over
``--rounds``. With 1 thread each round also runs the passes beside a Python thread that counts in
a loop (as env stepping holds the GIL in a pipelined actor, ``actors.pipeline``): the counter's
progress against its rate alone says for how long per pass the forward pass held the GIL, and
the pass's own time beside it what the GIL hand-overs cost it. Every variant is checked to see
weights loaded in place afterwards (``networks.set_weights``) and to match the eager module.

With ``--actor`` (about 30 s more) a Pong actor as ``experiment=pong`` builds it (16 envs of
ale-py's vector env, 1 torch thread) steps with each variant's forward pass, with
``actors.pipeline`` on (two lanes of 8, one's forward pass in a helper thread while the other
steps) and off: env steps/s, variants alternating, median over ``--actor-rounds``.

    python benchmarks/acting_bench.py --json acting.json
    python benchmarks/acting_bench.py --rounds 3 --window 0.05 --threads 1
    python benchmarks/acting_bench.py --actor --json docs/figures/acting_pong_cpu.json
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from provenance import provenance

BATCH = 16
NETS = {  # name: (torso, obs_shape, num_actions, observation values)
    "pong": ("nature", (4, 84, 84), 6, 256),
    "minatar": ("minatar", (4, 10, 10), 3, 2),
}
VARIANTS = ("jit.trace", "eager", "eager channels_last", "torch.compile")

Forward = Callable[[np.ndarray], np.ndarray]


def dynamo_import_cpu_s() -> float:
    """CPU seconds of ``import torch._dynamo`` after torch (here if not yet imported, else in a
    fresh process)."""
    if "torch._dynamo" not in sys.modules:
        start = time.process_time()
        import torch._dynamo  # noqa: F401

        return time.process_time() - start
    code = (
        "import time, torch; t = time.process_time(); import torch._dynamo; "
        "print(time.process_time() - t)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return float(out.stdout.strip().splitlines()[-1])


def make_forward(variant: str, net: Any, example: np.ndarray, *, bf16: bool) -> Any:
    """A q_values-style call for ``variant`` over ``net`` (which it must not copy), and the
    one-off seconds it took to prepare (trace, or compile on the first call)."""
    import torch

    def autocast() -> Any:
        return torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16, cache_enabled=False)

    start = time.perf_counter()
    if variant == "jit.trace":
        with warnings.catch_warnings(), torch.no_grad(), autocast():
            warnings.simplefilter("ignore")
            traced = torch.jit.trace(net, torch.as_tensor(example), check_trace=False)

        def forward(obs: np.ndarray) -> np.ndarray:
            with torch.inference_mode():
                return traced(torch.as_tensor(obs)).float().numpy()

    elif variant == "eager":

        def forward(obs: np.ndarray) -> np.ndarray:
            with torch.inference_mode(), autocast():
                return net(torch.as_tensor(obs)).float().numpy()

    elif variant == "eager channels_last":
        net.to(memory_format=torch.channels_last)  # parameters keep their identity
        cl = torch.channels_last

        def forward(obs: np.ndarray) -> np.ndarray:
            with torch.inference_mode(), autocast():
                return net(torch.as_tensor(obs).contiguous(memory_format=cl)).float().numpy()

    elif variant == "torch.compile":
        import torch._inductor.config as inductor_config

        # Kernels that read torch's thread count when they run (by default codegen fixes it):
        # one compiled module serves every thread count, as the eager module does.
        inductor_config.cpp.dynamic_threads = True
        compiled = torch.compile(net)

        def forward(obs: np.ndarray) -> np.ndarray:
            with torch.inference_mode(), autocast():
                return compiled(torch.as_tensor(obs)).float().numpy()

        forward(example)  # compiles
    else:
        raise ValueError(f"unknown variant {variant!r}")
    return forward, time.perf_counter() - start


class Counter:
    """A Python thread counting in a loop, holding the GIL whenever it runs."""

    def __init__(self) -> None:
        self.count = 0
        self._stop = False
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop:
            self.count += 1

    def stop(self) -> None:
        self._stop = True
        self._thread.join()


def timed(forward: Forward, obs: np.ndarray, window: float) -> tuple[float, int]:
    """Seconds per call of ``forward(obs)`` over about ``window`` seconds, and the calls."""
    calls, start = 0, time.perf_counter()
    while True:
        forward(obs)
        calls += 1
        elapsed = time.perf_counter() - start
        if elapsed >= window:
            return elapsed / calls, calls


def beside_counter(forward: Forward, obs: np.ndarray, window: float) -> dict[str, float]:
    """The pass's time beside a counting thread, the counter's progress against its rate alone,
    and the GIL the pass held (the counter's lost time, per pass)."""
    counter = Counter()
    try:
        c0, t0 = counter.count, time.perf_counter()
        time.sleep(window / 4)  # the counter alone, before and after
        c1, t1 = counter.count, time.perf_counter()
        per_call, calls = timed(forward, obs, window)
        c2, t2 = counter.count, time.perf_counter()
        time.sleep(window / 4)
        c3, t3 = counter.count, time.perf_counter()
    finally:
        counter.stop()
    alone = (c1 - c0 + c3 - c2) / (t1 - t0 + t3 - t2)
    progress = (c2 - c1) / (t2 - t1) / alone
    return {
        "ms": per_call * 1e3,
        "counter_progress": progress,
        "gil_ms": max(0.0, 1.0 - progress) * (t2 - t1) / calls * 1e3,
    }


def check_weights(forward: Forward, net: Any, cfg: Any, obs: np.ndarray, bf16: bool) -> float:
    """Loads new weights into ``net`` in place; max |q - eager q| relative to max |eager q|."""
    import torch

    from apex_dqn.algo.networks import build_q_network, get_weights, set_weights
    from apex_dqn.config import NetworkConfig

    torso, shape, actions, _ = cfg
    torch.manual_seed(12345)
    other = build_q_network(NetworkConfig(torso=torso), obs_shape=shape, num_actions=actions)
    set_weights(net, get_weights(other))
    with torch.inference_mode(), torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
        want = other.eval()(torch.as_tensor(obs)).float().numpy()
    got = forward(obs)
    return float(np.abs(got - want).max() / np.abs(want).max())


class _Acting:
    """Stands in for an actor lane's ``TorchQ``: acts with a benchmarked forward pass."""

    def __init__(self, forward: Forward) -> None:
        self.q_values = forward


def actor_speeds(
    args: argparse.Namespace, forwards: dict[tuple[str, int, str, bool], Forward]
) -> list[dict[str, Any]]:
    """Env steps/s of a Pong actor (``experiment=pong``) acting with each variant, 1 thread."""
    import dataclasses

    import torch

    from apex_dqn.cli.train import compose_config
    from apex_dqn.envs.factory import inspect_env
    from apex_dqn.roles import build

    torch.set_num_threads(1)
    cfg = compose_config(["experiment=pong"])
    info = inspect_env(cfg.env)
    pong = {(v, b): f for (n, t, v, b), f in forwards.items() if n == "pong" and t == 1}
    speeds: dict[tuple[bool, str, bool], list[float]] = {}
    actors = {}
    for pipeline in (True, False):
        c = dataclasses.replace(cfg, actors=dataclasses.replace(cfg.actors, pipeline=pipeline))
        actor = build.actor_spec(c, info, 0).build()
        actors[pipeline] = actor
        for fwd in pong.values():  # warm-up: every variant at the lanes' batch size
            for lane in getattr(actor, "lanes", [actor]):
                lane._net = _Acting(fwd)
            actor.run_steps(4)
    steps = cfg.actors.steps_per_call
    for r in range(args.actor_rounds):
        start = time.perf_counter()
        for pipeline, actor in actors.items():
            for (variant, bf16), fwd in pong.items():
                for lane in getattr(actor, "lanes", [actor]):
                    lane._net = _Acting(fwd)
                env_steps, t0 = 0, time.perf_counter()
                while time.perf_counter() - t0 < args.actor_window:
                    env_steps += actor.run_steps(steps)[1].env_steps
                rate = env_steps / (time.perf_counter() - t0)
                speeds.setdefault((pipeline, variant, bf16), []).append(rate)
        print(
            f"actor round {r + 1}/{args.actor_rounds}: {time.perf_counter() - start:.1f} s",
            flush=True,
        )
    for actor in actors.values():
        actor.close()
    return [
        {
            "pipeline": p,
            "variant": v,
            "bf16": b,
            "envs": cfg.actors.envs_per_actor,
            "env_steps_per_s_median": statistics.median(x),
            "env_steps_per_s_rounds": x,
        }
        for (p, v, b), x in speeds.items()
    ]


def run(args: argparse.Namespace) -> dict[str, Any]:
    """Every figure of the benchmark (see the module docstring)."""
    os.environ.setdefault("TORCHINDUCTOR_CACHE_DIR", tempfile.mkdtemp(prefix="acting_bench_"))
    import torch

    from apex_dqn.algo.networks import build_q_network
    from apex_dqn.config import NetworkConfig

    record = provenance()
    info = record["machine"]
    import_s = None if args.no_dynamo_import else dynamo_import_cpu_s()
    bf16_modes = [False, True] if (args.bf16 or info["avx512_bf16"]) else [False]
    threads_list = [int(t) for t in args.threads.split(",")]
    variants = [v for v in VARIANTS if v in args.variants.split(",")]
    rng = np.random.default_rng(0)
    forwards: dict[tuple[str, int, str, bool], Forward] = {}
    nets: dict[tuple[str, int, str, bool], Any] = {}
    setup: list[dict[str, Any]] = []
    obs_by_net = {}
    for name in args.nets.split(","):
        torso, shape, actions, high = NETS[name]
        obs_by_net[name] = rng.integers(0, high, (BATCH, *shape), dtype=np.uint8)
        torch.manual_seed(0)
        base = build_q_network(NetworkConfig(torso=torso), obs_shape=shape, num_actions=actions)
        base.eval()
        for threads in threads_list:
            torch.set_num_threads(threads)
            for variant in variants:
                for bf16 in bf16_modes:
                    if threads != threads_list[0]:  # one module serves every thread count
                        key0 = (name, threads_list[0], variant, bf16)
                        forwards[(name, threads, variant, bf16)] = forwards[key0]
                        nets[(name, threads, variant, bf16)] = nets[key0]
                        continue
                    net = copy.deepcopy(base)
                    fwd, seconds = make_forward(variant, net, obs_by_net[name], bf16=bf16)
                    key = (name, threads, variant, bf16)
                    forwards[key], nets[key] = fwd, net
                    entry = {
                        "net": name,
                        "threads": threads,
                        "variant": variant,
                        "bf16": bf16,
                        "setup_s": seconds,
                    }
                    if variant == "torch.compile":  # a new batch size compiles again
                        start = time.perf_counter()
                        fwd(obs_by_net[name][: BATCH // 2])
                        entry["new_batch_size_s"] = time.perf_counter() - start
                    setup.append(entry)
                    print(
                        f"setup {name} {threads}t {variant}{' + bf16' * bf16}: {seconds:.2f} s",
                        flush=True,
                    )

    for (name, threads, _, _), fwd in forwards.items():  # warm-up (profiling runs of the trace)
        torch.set_num_threads(threads)
        for _ in range(args.warmup):
            fwd(obs_by_net[name])
    samples: dict[tuple[str, int, str, bool], list[float]] = {k: [] for k in forwards}
    gil: dict[tuple[str, str, bool], list[dict[str, float]]] = {}
    for r in range(args.rounds):
        start = time.perf_counter()
        for key, fwd in forwards.items():
            name, threads, variant, bf16 = key
            torch.set_num_threads(threads)
            samples[key].append(timed(fwd, obs_by_net[name], args.window)[0] * 1e3)
            if threads == 1 and not args.no_gil:
                gil.setdefault((name, variant, bf16), []).append(
                    beside_counter(fwd, obs_by_net[name], args.window)
                )
        print(f"round {r + 1}/{args.rounds}: {time.perf_counter() - start:.1f} s", flush=True)

    rows = []
    for key, ms in samples.items():
        name, threads, variant, bf16 = key
        torch.set_num_threads(threads)
        row = {
            "net": name,
            "threads": threads,
            "variant": variant,
            "bf16": bf16,
            "ms_median": statistics.median(ms),
            "ms_rounds": ms,
        }
        g = gil.get((name, variant, bf16))
        if threads == 1 and g:
            for field in ("ms", "counter_progress", "gil_ms"):
                row[f"beside_counter_{field}"] = statistics.median(x[field] for x in g)
        rows.append(row)
    actor = actor_speeds(args, forwards) if args.actor else []
    torch.set_num_threads(threads_list[0])
    checks = []
    for key, fwd in forwards.items():
        name, threads, variant, bf16 = key
        if threads != threads_list[0]:
            continue
        torch.set_num_threads(threads)
        err = check_weights(fwd, nets[key], NETS[name], obs_by_net[name], bf16)
        checks.append(
            {
                "net": name,
                "threads": threads,
                "variant": variant,
                "bf16": bf16,
                "relative_error_after_new_weights": err,
            }
        )
    return {
        "provenance": record,
        "machine": info,
        "torch": torch.__version__,
        "python": platform.python_version(),
        "batch": BATCH,
        "nets": {
            n: {"torso": NETS[n][0], "obs_shape": NETS[n][1], "num_actions": NETS[n][2]}
            for n in obs_by_net
        },
        "rounds": args.rounds,
        "window_s": args.window,
        "dynamo_import_cpu_s": import_s,
        "rows": rows,
        "actor": actor,
        "setup": setup,
        "weight_checks": checks,
    }


def print_tables(result: dict[str, Any]) -> None:
    """The figures as markdown tables."""
    m = result["machine"]
    print(
        f"\n| {BATCH} obs, {m['cpu']} ({m['cores']} cores, avx512_bf16: {m['avx512_bf16']}), "
        f"torch {result['torch']} | threads | ms/pass (median) | vs eager "
        "| beside a counting thread: ms/pass | counter's progress | GIL held ms/pass |"
    )
    print("| --- | --- | --- | --- | --- | --- | --- |")
    eager = {
        (r["net"], r["threads"], r["bf16"]): r["ms_median"]
        for r in result["rows"]
        if r["variant"] == "eager"
    }
    for r in result["rows"]:
        base = eager.get((r["net"], r["threads"], r["bf16"]))
        ratio = f"{r['ms_median'] / base:.2f}x" if base else "-"
        if "beside_counter_ms" in r:
            gil = (
                f"{r['beside_counter_ms']:.3f} | {r['beside_counter_counter_progress']:.0%} "
                f"| {r['beside_counter_gil_ms']:.3f}"
            )
        else:
            gil = "- | - | -"
        name = f"{r['net']}: {r['variant']}{' + bf16' * r['bf16']}"
        print(f"| {name} | {r['threads']} | {r['ms_median']:.3f} | {ratio} | {gil} |")
    print("\n| one-off | seconds |")
    print("| --- | --- |")
    if result["dynamo_import_cpu_s"] is not None:
        cpu_s = result["dynamo_import_cpu_s"]
        print(f"| import torch._dynamo (CPU s, torch already imported) | {cpu_s:.2f} |")
    for s in result["setup"]:
        label = f"{s['net']}: {s['variant']}{' + bf16' * s['bf16']}, {s['threads']} thread(s)"
        print(f"| {label}: first call (trace/compile) | {s['setup_s']:.2f} |")
        if "new_batch_size_s" in s:
            print(f"| {label}: first call at batch {BATCH // 2} | {s['new_batch_size_s']:.2f} |")
    if result["actor"]:
        envs = result["actor"][0]["envs"]
        print(
            f"\n| Pong actor ({envs} envs, ale-py vector env, 1 torch thread) "
            "| env steps/s, actors.pipeline=true | env steps/s, pipeline=false |"
        )
        print("| --- | --- | --- |")
        by = {(a["variant"], a["bf16"], a["pipeline"]): a for a in result["actor"]}
        for variant, bf16 in dict.fromkeys((a["variant"], a["bf16"]) for a in result["actor"]):
            on, off = by[(variant, bf16, True)], by[(variant, bf16, False)]
            print(
                f"| {variant}{' + bf16' * bf16} | {on['env_steps_per_s_median']:,.0f} "
                f"| {off['env_steps_per_s_median']:,.0f} |"
            )
    worst = max(c["relative_error_after_new_weights"] for c in result["weight_checks"])
    print(
        f"\nAfter new weights loaded in place, every variant matches the eager module "
        f"within {worst:.1e} (relative to max |Q|)."
    )


def main() -> None:
    """Parse the command line, run, print the tables, write ``--json``."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=5, help="timed rounds (medians over them)")
    parser.add_argument("--window", type=float, default=0.08, help="seconds per variant per round")
    parser.add_argument("--warmup", type=int, default=5, help="untimed calls per variant first")
    parser.add_argument("--threads", default="1,2", help="torch thread counts, e.g. 1,2")
    parser.add_argument("--nets", default="pong,minatar", help="of: " + ",".join(NETS))
    parser.add_argument("--variants", default=",".join(VARIANTS), help="comma-separated")
    parser.add_argument("--bf16", action="store_true", help="bf16 autocast even if emulated")
    parser.add_argument("--no-gil", action="store_true", help="skip the counting-thread runs")
    parser.add_argument(
        "--no-dynamo-import", action="store_true", help="skip timing import torch._dynamo"
    )
    parser.add_argument("--actor", action="store_true", help="also a Pong actor's env steps/s")
    parser.add_argument("--actor-rounds", type=int, default=3)
    parser.add_argument("--actor-window", type=float, default=1.0, help="seconds per variant")
    parser.add_argument("--json", type=Path, help="write the figures here")
    args = parser.parse_args()
    result = run(args)
    print_tables(result)
    if args.json:
        args.json.write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
