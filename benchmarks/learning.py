"""Greedy return against wall-clock time on a MinAtar game: apex-dqn against Stable-Baselines3 DQN.

Both systems get the same wall-clock budget on the same machine, counted from the creation of
their process (imports, Ray start-up and everything else included), in the same benchmark run:
for seed k both run, one after the other (never at once), with the one that goes first
alternating from seed to seed. Each run is a fresh subprocess.

- apex-dqn: ``python -m apex_dqn env=minatar env.id=MinAtar/<game>-v1 seed=k
  train.max_seconds=<budget> ...``; its greedy evaluations (run during training) are the curve.
- SB3: this script in ``--sb3-worker`` mode trains SB3's DQN with the MinAtar reference settings
  (Young & Tian 2019: replay 100k, batch 32, one update per env step, target copied every 1,000
  steps, RMSprop, one 16-channel 3x3 convolution and a 128-unit layer) and saves the Q-network
  every ``--snapshot-every-s`` seconds; once it has exited, this process plays greedy episodes
  with every snapshot, so that SB3's evaluations cost its training nothing.

The figures: per system, the median over seeds of the final and best greedy return within the
budget; ``sb3_budget_return`` (SB3's median final return) and each system's median time to reach
it; ``speedup_vs_sb3`` = budget / apex-dqn's median time to reach it.

Run it on an otherwise idle machine: SB3 keeps torch's default thread count (one per core, as a
user would have it), and those threads slow to a crawl when anything else takes a core
(``--sb3-threads 1`` pins it; ``provenance.machine.omp_num_threads`` in the JSON records what
the runs got).

    python benchmarks/learning.py Breakout --budget-s 600 --seeds 3 --first-seed 100 \\
        --sb3-seeds 2 --seed-note "no tuning run used seeds 100-102" \\
        --json docs/figures/learning_breakout.json --png docs/figures/learning_breakout.png
    python benchmarks/learning.py Breakout --budget-s 60 --seeds 1 --systems sb3
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, cast

import gymnasium as gym
import numpy as np
import psutil
import torch
import yaml
from provenance import provenance
from stable_baselines3 import DQN
from stable_baselines3.common.callbacks import BaseCallback
from stable_baselines3.common.torch_layers import BaseFeaturesExtractor

from apex_dqn.config import EnvConfig
from apex_dqn.envs.factory import make_env

ROOT = Path(__file__).resolve().parents[1]

SYSTEMS = ("apex", "sb3")
LABELS = {"apex": "apex-dqn", "sb3": "Stable-Baselines3 DQN"}
COLORS = {"apex": "tab:blue", "sb3": "tab:orange"}
# Points up to this far past the budget still count: SB3's last snapshot is taken the moment the
# budget runs out, one env step (a few ms) after it.
BUDGET_SLACK_S = 0.5
EVAL_SEED_BASE = 10_000
# SB3 stops on the budget; total_timesteps only sets the length of the epsilon schedule.
SB3_TOTAL_TIMESTEPS = 10_000_000
SB3_EPS_DECAY_STEPS = 100_000

Curve = list[dict[str, Any]]


# --- The summary math --------------------------------------------------------------------------


def within_budget(curve: Curve, budget_s: float, slack_s: float = BUDGET_SLACK_S) -> Curve:
    """The points of ``curve`` evaluated within the budget (process_s <= budget + slack)."""
    return [p for p in curve if p["process_s"] <= budget_s + slack_s]


def final_return(curve: Curve, budget_s: float) -> float | None:
    """The return of the last point within the budget (None: no point)."""
    points = within_budget(curve, budget_s)
    return points[-1]["mean_return"] if points else None


def best_return(curve: Curve, budget_s: float) -> float | None:
    """The best return within the budget (None: no point)."""
    points = within_budget(curve, budget_s)
    return max(p["mean_return"] for p in points) if points else None


def time_to_reach(curve: Curve, target: float | None, budget_s: float) -> float | None:
    """The first process_s within the budget at which the return is >= target (None: never)."""
    if target is None:
        return None
    for point in within_budget(curve, budget_s):
        if point["mean_return"] >= target:
            return float(point["process_s"])
    return None


def median_or_none(values: list[float | None]) -> float | None:
    """Median of the values that are not None (None: there are none)."""
    present = [v for v in values if v is not None]
    return float(statistics.median(present)) if present else None


def median_time(times: list[float | None]) -> float | None:
    """Median of times to reach, a seed that never reaches (None) counting as +inf; None when
    the median is infinite (more than half never reach, or half with an even count)."""
    if not times:
        return None
    median = statistics.median([math.inf if t is None else t for t in times])
    return float(median) if math.isfinite(median) else None


def ratio(numerator: float | None, denominator: float | None) -> float | None:
    """numerator / denominator, None when either is missing or the denominator is 0."""
    if numerator is None or not denominator:
        return None
    return numerator / denominator


def summarize(
    runs: list[dict[str, Any]], budget_s: float, reference: float | None = None
) -> dict[str, Any]:
    """Per run: final, best return and time to reach SB3's median final return (added to the
    runs); per system: their medians over seeds; the speedups of apex-dqn against SB3. With a
    ``reference`` return (the MinAtar reference DQN's): each system's median time to reach it
    (its curve) and, for apex-dqn, to a confirmed evaluation at or above it."""
    by_system = {s: [r for r in runs if r["system"] == s] for s in SYSTEMS}
    for run in runs:
        run["final_return"] = final_return(run["curve"], budget_s)
        run["best_return"] = best_return(run["curve"], budget_s)
    target = median_or_none([r["final_return"] for r in by_system["sb3"]])
    summary: dict[str, Any] = {"sb3_budget_return": target}
    for system, group in by_system.items():
        if not group:
            continue
        for run in group:
            run["time_to_reach_s"] = time_to_reach(run["curve"], target, budget_s)
        summary[system] = {
            "final_return_median": median_or_none([r["final_return"] for r in group]),
            "best_return_median": median_or_none([r["best_return"] for r in group]),
            "time_to_reach_median_s": median_time([r["time_to_reach_s"] for r in group]),
            "env_steps_median": median_or_none([r["env_steps"] for r in group]),
            "updates_median": median_or_none([r["updates"] for r in group]),
        }
        if reference is not None:
            times = [time_to_reach(r["curve"], reference, budget_s) for r in group]
            summary[system]["time_to_reference_median_s"] = median_time(times)
    if by_system["apex"]:
        # train.max_seconds counts from the start of training, so a solve may come after the
        # budget (from process start): it does not count.
        solves = [
            t if t is not None and t <= budget_s + BUDGET_SLACK_S else None
            for t in (r.get("time_to_solve_s") for r in by_system["apex"])
        ]
        summary["apex"]["time_to_target_median_s"] = median_time(solves)
    apex_time = summary.get("apex", {}).get("time_to_reach_median_s")
    sb3_time = summary.get("sb3", {}).get("time_to_reach_median_s")
    summary["reference_return"] = reference
    if reference is not None and "apex" in summary:
        # The issue's test: the median run confirms the reference within the budget.
        summary["apex"]["reaches_reference"] = (
            summary["apex"]["time_to_target_median_s"] is not None
        )
    sb3_final = summary.get("sb3", {}).get("final_return_median")
    # A ratio of returns means something only over a positive return.
    summary["return_ratio_vs_sb3"] = (
        ratio(summary.get("apex", {}).get("final_return_median"), sb3_final)
        if sb3_final is not None and sb3_final > 0
        else None
    )
    summary["speedup_vs_sb3"] = ratio(budget_s, apex_time)
    summary["speedup_vs_sb3_time_to_reach"] = ratio(sb3_time, apex_time)
    return summary


def value_at(curve: Curve, t: float) -> float:
    """The return of the latest point at or before ``t`` (NaN before the first)."""
    value = math.nan
    for point in curve:
        if point["process_s"] > t:
            break
        value = point["mean_return"]
    return value


def median_curve(curves: list[Curve], grid: np.ndarray) -> np.ndarray:
    """Step-wise median over the curves on ``grid`` (NaN where some curve has no point yet)."""
    values = np.array([[value_at(c, t) for t in grid] for c in curves])
    out = np.full(len(grid), np.nan)
    complete = ~np.isnan(values).any(axis=0)
    out[complete] = np.median(values[:, complete], axis=0)
    return out


# --- SB3: the MinAtar reference DQN --------------------------------------------------------------


class MinAtarCNN(BaseFeaturesExtractor):
    """The reference network's trunk: Conv2d(C, 16, 3, stride 1) + ReLU, flattened."""

    def __init__(self, observation_space: gym.spaces.Box) -> None:
        c, h, w = observation_space.shape
        super().__init__(observation_space, features_dim=16 * (h - 2) * (w - 2))
        self.net = torch.nn.Sequential(
            torch.nn.Conv2d(c, 16, kernel_size=3, stride=1), torch.nn.ReLU(), torch.nn.Flatten()
        )

    def forward(self, observations: torch.Tensor) -> torch.Tensor:
        return self.net(observations)


def make_minatar_env(game: str) -> gym.Env:
    """``MinAtar/<game>-v1`` exactly as apex-dqn's actors and evaluator make it with env=minatar:
    channels-first uint8 grids, sticky actions and difficulty ramping as the package has them,
    and the group's episode limit."""
    group = yaml.safe_load((ROOT / "conf" / "env" / "minatar.yaml").read_text())
    limit = group["env"]["max_episode_steps"]
    return make_env(EnvConfig(id=f"MinAtar/{game}-v1", max_episode_steps=limit))


def sb3_dqn(env: gym.Env, seed: int) -> DQN:
    """SB3's DQN with the settings of the MinAtar reference DQN (examples/dqn.py)."""
    return DQN(
        "CnnPolicy",
        env,
        learning_rate=2.5e-4,
        buffer_size=100_000,
        learning_starts=5_000,
        batch_size=32,
        gamma=0.99,
        train_freq=1,
        gradient_steps=1,
        target_update_interval=1_000,
        exploration_initial_eps=1.0,
        exploration_final_eps=0.1,
        exploration_fraction=SB3_EPS_DECAY_STEPS / SB3_TOTAL_TIMESTEPS,
        policy_kwargs={
            "features_extractor_class": MinAtarCNN,
            "net_arch": [128],
            "normalize_images": False,
            "optimizer_class": torch.optim.RMSprop,
            "optimizer_kwargs": {"alpha": 0.95, "centered": True, "eps": 0.01},
        },
        seed=seed,
        device="cpu",
        verbose=0,
    )


class BudgetCallback(BaseCallback):
    """Stops training once the budget (from process creation) is spent; saves the Q-network
    every ``every_s`` seconds of process time and when it stops."""

    def __init__(self, out: Path, budget_s: float, every_s: float, created: float) -> None:
        super().__init__()
        self.out, self.budget_s, self.every_s, self.created = out, budget_s, every_s, created
        self.next_snapshot_s = every_s
        self.count = 0
        self.stopped = False

    def snapshot(self, process_s: float) -> None:
        """The Q-network's weights to snap_<i>.pt and a line in snapshots.jsonl."""
        name, model = f"snap_{self.count:04d}.pt", cast(DQN, self.model)
        torch.save(model.q_net.state_dict(), self.out / name)
        line = {
            "file": name,
            "process_s": round(process_s, 3),
            "env_steps": int(model.num_timesteps),
            "updates": int(model._n_updates),
        }
        with (self.out / "snapshots.jsonl").open("a") as f:
            f.write(json.dumps(line) + "\n")
        self.count += 1

    def _on_step(self) -> bool:
        process_s = time.time() - self.created
        if process_s >= self.budget_s:
            self.snapshot(process_s)
            self.stopped = True
            return False
        if process_s >= self.next_snapshot_s:
            self.snapshot(process_s)
            self.next_snapshot_s = (process_s // self.every_s + 1) * self.every_s
        return True

    def _on_training_end(self) -> None:
        if not self.stopped:  # the run ended for another reason than the budget
            self.snapshot(time.time() - self.created)


def sb3_worker(
    game: str, seed: int, budget_s: float, out: Path, every_s: float, threads: int | None = None
) -> None:
    """Train SB3 DQN on the game until the budget is spent; snapshots and worker.json in out.
    ``threads``: torch's intra-op threads (None: torch's default, as a user would have it)."""
    created = psutil.Process().create_time()
    if threads:
        torch.set_num_threads(threads)
    out.mkdir(parents=True, exist_ok=True)
    model = sb3_dqn(make_minatar_env(game), seed)
    callback = BudgetCallback(out, budget_s, every_s, created)
    start_s = time.time() - created
    model.learn(total_timesteps=SB3_TOTAL_TIMESTEPS, callback=callback)
    end_s = time.time() - created
    worker = {
        "torch_threads": torch.get_num_threads(),
        "learn_start_process_s": round(start_s, 3),
        "end_process_s": round(end_s, 3),
        "env_steps": int(model.num_timesteps),
        "updates": int(model._n_updates),
        "env_steps_per_s_learning": model.num_timesteps / max(end_s - start_s, 1e-9),
    }
    (out / "worker.json").write_text(json.dumps(worker, indent=2))


def greedy_return(q_net: torch.nn.Module, env: gym.Env, seed: int) -> tuple[float, bool]:
    """One whole greedy episode from ``env.reset(seed=seed)``: its return, and whether the
    episode limit cut it short."""
    obs, _ = env.reset(seed=seed)
    total, terminated, truncated = 0.0, False, False
    while not (terminated or truncated):
        with torch.no_grad():
            q = q_net(torch.as_tensor(obs[None], dtype=torch.float32))
        obs, reward, terminated, truncated, _ = env.step(int(q.argmax(dim=1)[0]))
        total += float(reward)
    return total, bool(truncated)


def evaluate_snapshots(run_dir: Path, game: str, episodes: int) -> Curve:
    """The curve of an SB3 run: each snapshot's mean greedy return over ``episodes`` episodes
    (env seeds 10_000 + episode index)."""
    index = run_dir / "snapshots.jsonl"
    if not index.exists():
        return []
    model = sb3_dqn(make_minatar_env(game), seed=0)
    curve = []
    for line in index.read_text().splitlines():
        snap = json.loads(line)
        model.q_net.load_state_dict(torch.load(run_dir / snap["file"], weights_only=True))
        model.q_net.eval()
        env = make_minatar_env(game)
        results = [greedy_return(model.q_net, env, EVAL_SEED_BASE + i) for i in range(episodes)]
        env.close()
        curve.append(
            {
                **{k: snap[k] for k in ("process_s", "env_steps", "updates")},
                "mean_return": float(np.mean([r for r, _ in results])),
                "episodes_cut": sum(cut for _, cut in results),
            }
        )
    return curve


# --- The runs ------------------------------------------------------------------------------------


def run_order(seeds: list[int], systems: list[str]) -> list[tuple[str, int]]:
    """(system, seed) in run order: both systems per seed, the first alternating by seed."""
    order = []
    for i, seed in enumerate(seeds):
        order += [(s, seed) for s in (systems if i % 2 == 0 else systems[::-1])]
    return order


def seed_list(first: int, count: int, sb3_count: int | None = None) -> dict[str, list[int]]:
    """The seeds each system runs: ``count`` from ``first`` on; SB3 only the first
    ``sb3_count`` of them (default: all)."""
    seeds = list(range(first, first + count))
    return {"apex": seeds, "sb3": seeds[: count if sb3_count is None else sb3_count]}


def run_logged(cmd: list[str], run_dir: Path, timeout: float) -> tuple[int, float]:
    """Run ``cmd`` with its output in run_dir/log.txt; its return code and wall seconds."""
    run_dir.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    with (run_dir / "log.txt").open("w") as log:
        try:
            code = subprocess.run(
                cmd, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT, timeout=timeout
            ).returncode
        except subprocess.TimeoutExpired:
            code = -9
    wall = time.perf_counter() - start
    if code != 0:
        sys.stderr.write((run_dir / "log.txt").read_text()[-3000:])
    return code, round(wall, 2)


def apex_curve(summary: dict[str, Any]) -> Curve:
    """The greedy evaluations of an apex-dqn run (summary.json's ``evals``)."""
    keys = ("process_s", "env_steps", "wall_s", "mean_return")
    return [{k: e[k] for k in keys} for e in summary.get("evals", [])]


def _apex_stop(target: float | None, reference: float | None = None) -> list[str]:
    """apex-dqn's stop rule: the whole budget, or (``--apex-target``) stop once a confirmed
    greedy evaluation reaches the target, as a user's run does. With only a ``reference``
    return the run goes on for the whole budget, but confirms (and records) the first
    evaluation that reaches it."""
    if target is not None:
        return [f"train.target_return={target:g}", "train.stop_on_target=true"]
    if reference is not None:
        return [f"train.target_return={reference:g}", "train.stop_on_target=false"]
    return ["train.stop_on_target=false"]


def run_apex(game: str, seed: int, args: argparse.Namespace, run_dir: Path) -> dict[str, Any]:
    """One apex-dqn training command; its curve and counters."""
    base = args.apex_base_overrides.split() if args.apex_base_overrides else None
    cmd = [
        *(sys.executable, "-m", "apex_dqn"),
        *(base or ["env=minatar", f"env.id=MinAtar/{game}-v1"]),
        *(
            f"seed={seed}",
            f"train.max_seconds={args.budget_s}",
            *_apex_stop(args.apex_target, args.reference_return),
        ),
        *(f"output_dir={run_dir}", f"eval.episodes={args.eval_episodes}", *args.override),
    ]
    code, wall = run_logged(cmd, run_dir, args.budget_s + args.timeout_margin_s)
    path = run_dir / "summary.json"
    summary = json.loads(path.read_text()) if path.exists() else {}
    curve = apex_curve(summary)
    return {
        "curve": curve,
        # With --apex-target: seconds from process start to the confirmed solve, and the two
        # evaluations that made it (None when the target was not reached).
        "time_to_solve_s": summary.get("time_to_solve_s"),
        "solve_eval_return": summary.get("solve_eval_return"),
        "confirm_eval_return": summary.get("confirm_eval_return"),
        "env_steps": summary.get("env_steps"),
        "updates": summary.get("learner_steps"),
        # Against the step-only rate, this shows whether the run had the machine to itself.
        "learner_updates_per_s": summary.get("learner_updates_per_s"),
        "wall_s": wall,
        "returncode": code,
    }


def run_sb3(game: str, seed: int, args: argparse.Namespace, run_dir: Path) -> dict[str, Any]:
    """One SB3 worker, then the greedy evaluation of its snapshots (here, after it exited)."""
    cmd = [
        *(sys.executable, str(Path(__file__).resolve()), "--sb3-worker", "--game", game),
        *("--seed", str(seed), "--budget-s", str(args.budget_s), "--out", str(run_dir)),
        *("--snapshot-every-s", str(args.snapshot_every_s)),
        *(("--torch-threads", str(args.sb3_threads)) if args.sb3_threads else ()),
    ]
    code, wall = run_logged(cmd, run_dir, args.budget_s + args.timeout_margin_s)
    curve = evaluate_snapshots(run_dir, game, args.eval_episodes)
    path = run_dir / "worker.json"
    worker = json.loads(path.read_text()) if path.exists() else {}
    return {
        "curve": curve,
        "env_steps": curve[-1]["env_steps"] if curve else None,
        "updates": curve[-1]["updates"] if curve else None,
        "wall_s": wall,
        "returncode": code,
        "worker": worker,
    }


def run_all(args: argparse.Namespace, workdir: Path) -> tuple[list[tuple[str, int]], list[dict]]:
    """Every (system, seed) run in order, one at a time."""
    systems = [s for s in SYSTEMS if s in args.systems.split(",")]
    seeds = seed_list(args.first_seed, args.seeds, args.sb3_seeds)
    order = [
        (system, seed)
        for system, seed in run_order(seeds["apex"], systems)
        if seed in seeds[system]
    ]
    runs = []
    for system, seed in order:
        run_dir = workdir / f"{system}_seed{seed}"
        run = (run_apex if system == "apex" else run_sb3)(args.game, seed, args, run_dir)
        steps = run["env_steps"]
        run["env_steps_per_s"] = steps / run["wall_s"] if steps and run["wall_s"] else None
        runs.append({"system": system, "seed": seed, **run})
        print(
            f"{system} seed {seed}: rc {run['returncode']}, {len(run['curve'])} evals, "
            f"{steps} env steps, {run['wall_s']:.0f} s",
            file=sys.stderr,
            flush=True,
        )
    return order, runs


# --- The output ----------------------------------------------------------------------------------


def _fmt(value: float | None, spec: str = ".1f") -> str:
    return "-" if value is None else format(value, spec)


def markdown(runs: list[dict[str, Any]], summary: dict[str, Any], budget_s: float) -> str:
    """One row per run, a median row per system, then the speedup line."""
    target = summary["sb3_budget_return"]
    lines = [
        f"| system | seed | env steps | updates | final return | best return "
        f"| time to reach {_fmt(target, '.2f')} (s) |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for r in runs:
        lines.append(
            f"| {LABELS[r['system']]} | {r['seed']} | {_fmt(r['env_steps'], ',')} "
            f"| {_fmt(r['updates'], ',')} | {_fmt(r['final_return'], '.2f')} "
            f"| {_fmt(r['best_return'], '.2f')} | {_fmt(r.get('time_to_reach_s'))} |"
        )
    for system in SYSTEMS:
        if system in summary:
            s = summary[system]
            lines.append(
                f"| **{LABELS[system]} median** | | {_fmt(s['env_steps_median'], ',.0f')} "
                f"| {_fmt(s['updates_median'], ',.0f')} | {_fmt(s['final_return_median'], '.2f')} "
                f"| {_fmt(s['best_return_median'], '.2f')} | {_fmt(s['time_to_reach_median_s'])} |"
            )
    if "apex" in summary and any(r.get("time_to_solve_s") for r in runs):
        lines.append(
            "\napex-dqn's median time from process start to a confirmed greedy return at or "
            f"above the target: {_fmt(summary['apex']['time_to_target_median_s'])} s"
        )
    reference = summary.get("reference_return")
    if reference is not None:
        times = ", ".join(
            f"{LABELS[system]} {_fmt(summary[system]['time_to_reference_median_s'])} s"
            for system in SYSTEMS
            if system in summary
        )
        lines.append(f"\nmedian time to the reference return {reference:g}: {times}")
    lines.append(
        f"\napex-dqn's median final return / SB3's: {_fmt(summary['return_ratio_vs_sb3'], '.2f')}x"
    )
    lines.append(
        f"\nspeedup vs SB3 (budget {budget_s:g} s / apex-dqn's median time to reach SB3's "
        f"median final return): {_fmt(summary['speedup_vs_sb3'], '.2f')}x; against SB3's own "
        f"median time to reach it: {_fmt(summary['speedup_vs_sb3_time_to_reach'], '.2f')}x"
    )
    return "\n".join(lines)


def plot(runs: list[dict[str, Any]], summary: dict[str, Any], args: argparse.Namespace) -> None:
    """Greedy return against seconds from process start: thin line per seed, thick median."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(8, 5))
    grid = np.linspace(0.0, args.budget_s + BUDGET_SLACK_S, 500)
    for system in SYSTEMS:
        curves = [within_budget(r["curve"], args.budget_s) for r in runs if r["system"] == system]
        curves = [c for c in curves if c]
        stops = system == "apex" and args.apex_target is not None
        for c in curves:
            xs, ys = [p["process_s"] for p in c], [p["mean_return"] for p in c]
            ax.plot(xs, ys, drawstyle="steps-post", color=COLORS[system], lw=0.8, alpha=0.5)
            if stops:  # the run ended here, at its confirmed solve (or at the budget)
                ax.plot(xs[-1], ys[-1], "x", color=COLORS[system], ms=7)
        if curves:
            # Up to the last run's end: a run that stopped earlier counts with its last return.
            shown = grid <= max(c[-1]["process_s"] for c in curves)
            median = median_curve(curves, grid[shown])
            label = f"{LABELS[system]} median"
            if stops:
                label += f" (x: a run stopped at a confirmed {args.apex_target:g})"
            ax.plot(grid[shown], median, color=COLORS[system], lw=2.5, label=label)
    if summary["sb3_budget_return"] is not None:
        label = "SB3 median return at the budget"
        ax.axhline(summary["sb3_budget_return"], color="grey", ls="--", lw=1, label=label)
    if summary.get("reference_return") is not None:
        label = f"reference return ({summary['reference_return']:g})"
        ax.axhline(summary["reference_return"], color="black", ls=":", lw=1, label=label)
    ax.set_xlabel("wall-clock seconds from process start")
    ax.set_ylabel(f"greedy return ({args.eval_episodes} episodes)")
    names = " vs ".join(LABELS[s] for s in SYSTEMS if any(r["system"] == s for r in runs))
    ax.set_title(
        f"MinAtar/{args.game}-v1, {os.cpu_count()} cores: {names} (budget {args.budget_s:g} s)",
        fontsize=10,
    )
    if ax.get_legend_handles_labels()[0]:
        ax.legend(loc="upper left")
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(args.png, dpi=120)
    plt.close(fig)


def parse_args(argv: list[str]) -> argparse.Namespace:
    """The benchmark's command line."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("game", help="MinAtar game: Asterix, Breakout, Freeway, Seaquest, ...")
    parser.add_argument("--budget-s", type=float, default=600.0, help="seconds per run")
    parser.add_argument("--seeds", type=int, default=3, help="how many seeds (default 3)")
    parser.add_argument("--first-seed", type=int, default=0, help="seeds run from this on")
    parser.add_argument(
        "--sb3-seeds", type=int, default=None, help="SB3 runs only the first N seeds (default all)"
    )
    parser.add_argument(
        "--seed-note", default=None, help="recorded in the JSON: e.g. which seeds tuning used"
    )
    parser.add_argument("--systems", default="apex,sb3", help="comma-separated: apex, sb3")
    parser.add_argument("--eval-episodes", type=int, default=10, help="episodes per evaluation")
    parser.add_argument("--snapshot-every-s", type=float, default=15.0, help="SB3 snapshots")
    parser.add_argument(
        "--sb3-threads", type=int, default=None, help="SB3's torch threads (default: torch's)"
    )
    parser.add_argument("--override", action="append", default=[], help="apex-dqn override")
    parser.add_argument(
        "--apex-target",
        type=float,
        default=None,
        help="apex-dqn runs stop at this (confirmed) greedy return; default: whole budget",
    )
    parser.add_argument(
        "--reference-return",
        type=float,
        default=None,
        help="the reference DQN's return: times to reach it; apex-dqn confirms it, runs on",
    )
    parser.add_argument("--workdir", type=Path, help="keep the runs here (default: a tempdir)")
    parser.add_argument("--timeout-margin-s", type=float, default=300.0, help="budget + this")
    parser.add_argument("--json", type=Path, help="write the figures here")
    parser.add_argument("--png", type=Path, help="write the plot here")
    # Replaces "env=minatar env.id=MinAtar/<game>-v1" (testing with another env).
    parser.add_argument("--apex-base-overrides", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    unknown = set(args.systems.split(",")) - set(SYSTEMS)
    if unknown:
        parser.error(f"unknown systems: {sorted(unknown)}")
    if args.seeds < 1:
        parser.error(f"--seeds must be >= 1, got {args.seeds}")
    if args.sb3_seeds is not None and not 1 <= args.sb3_seeds <= args.seeds:
        parser.error(f"--sb3-seeds must be in [1, --seeds={args.seeds}], got {args.sb3_seeds}")
    if args.apex_target is not None and args.reference_return is not None:
        parser.error("give --apex-target (stop there) or --reference-return (run on), not both")
    return args


def worker_main(argv: list[str]) -> None:
    """``--sb3-worker`` mode: one SB3 training run (started by the benchmark)."""
    parser = argparse.ArgumentParser(description=sb3_worker.__doc__)
    parser.add_argument("--sb3-worker", action="store_true")
    parser.add_argument("--game", required=True)
    parser.add_argument("--seed", type=int, required=True)
    parser.add_argument("--budget-s", type=float, required=True)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--snapshot-every-s", type=float, default=15.0)
    parser.add_argument("--torch-threads", type=int, default=None)
    a = parser.parse_args(argv)
    sb3_worker(a.game, a.seed, a.budget_s, a.out, a.snapshot_every_s, a.torch_threads)


def main(argv: list[str] | None = None) -> None:
    argv = sys.argv[1:] if argv is None else argv
    if "--sb3-worker" in argv:
        worker_main(argv)
        return
    args = parse_args(argv)
    if args.workdir:
        args.workdir.mkdir(parents=True, exist_ok=True)
    keep = contextlib.nullcontext(args.workdir) if args.workdir else None
    with keep or tempfile.TemporaryDirectory(prefix="apex-dqn-learning-") as workdir:
        order, runs = run_all(args, Path(workdir))
    summary = summarize(runs, args.budget_s, args.reference_return)
    print(markdown(runs, summary, args.budget_s))
    if args.json:
        figures = {
            "game": args.game,
            "env_id": f"MinAtar/{args.game}-v1",
            "budget_s": args.budget_s,
            "seeds": seed_list(args.first_seed, args.seeds, args.sb3_seeds),
            "seed_note": args.seed_note,
            "eval_episodes": args.eval_episodes,
            "apex_target": args.apex_target,
            "reference_return": args.reference_return,
            "order": [list(x) for x in order],
            "provenance": provenance(),
            "runs": runs,
            "summary": summary,
        }
        args.json.write_text(json.dumps(figures, indent=2))
    if args.png:
        plot(runs, summary, args)


if __name__ == "__main__":
    main()
