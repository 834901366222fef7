"""Pong to +18 with the defaults: one ``experiment=pong`` run, its curves and figures as JSON;
with ``--game breakout``, ALE/Breakout-v5 on the ``env=atari`` defaults beside a peer's curve.

The run is the CLI exactly as a user starts it, with only a time budget added:

    python -m apex_dqn experiment=pong train.max_seconds=<budget> output_dir=<run dir>
    python -m apex_dqn env=atari env.id=ALE/Breakout-v5 train.max_seconds=<budget> ...

It stops at its first confirmed evaluation at or above +18 (the mean of ``eval.episodes`` whole
games, unclipped, epsilon 0.01, then a second set of games with the same weights), or at the
budget. Time is counted from the creation of the run's process (imports, Ray start-up and all).
This script then writes, under ``--out``: the run's small files (``summary.json``,
``metrics.jsonl``, ``config.yaml``, ``console.log``, ``training.png``), ``learning_curve.png``
(greedy return against env steps and against seconds since process start) and ``pong.json``
(the command, the machine, the commit, time and env steps to the target, and every evaluation;
``breakout.json`` for Breakout, which has no target and adds the peer's curve: see ``GAMES``);
a markdown table goes to stdout.

    python benchmarks/pong.py --budget-s 7200 --out docs/pong_2cores
    python benchmarks/pong.py --game breakout --budget-s 7200 --out docs/figures/breakout_v5
    python benchmarks/pong.py --from-run outputs/<run> --out docs/pong_2cores  # a run made
                                                          # with the command above, summarised

Run it on an otherwise idle machine: every core the run does not get is updates it does not make.
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

import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

sys.path.insert(0, str(ROOT / "benchmarks"))

from provenance import provenance  # noqa: E402

from apex_dqn.core.metrics import read_jsonl  # noqa: E402
from apex_dqn.files.atomic import write_json_atomic  # noqa: E402
from apex_dqn.files.plotting import plot_learning_curve  # noqa: E402

RUN_FILES = ("summary.json", "metrics.jsonl", "config.yaml", "training.png")

# Dopamine's published Breakout curve (google/dopamine, baselines/atari/data/breakout_CNN.json at
# 9f616b92, 2024-10-25): the mean over 5 seeds of the training episodes' unclipped whole-game
# returns in each window of 250k agent steps (x4 frames), epsilon 0.01 once decayed (over the
# first 250k), sticky actions 0.25 as ALE v5's, the Nature CNN. docs/figures/breakout_v5/peers.md
# has the other peers and why this one.
DOPAMINE_BREAKOUT: dict[str, Any] = {
    "source": "google/dopamine baselines/atari/data/breakout_CNN.json @ 9f616b92",
    "what": "training returns (epsilon 0.01), mean of 5 seeds per 250k-step window",
    "window": 250_000,
    "agents": {
        "DQN (JAX)": [1.8, 7.1, 14.2, 18.5, 23.4, 29.7, 35.2, 41.5],
        "Rainbow": [1.7, 4.5, 11.5, 16.2, 19.4, 23.3, 27.1, 31.8],
    },
}

# Per game: the overrides that choose it (the defaults a user gets), the JSON's name, the
# published curve to set beside the run (None for Pong: docs/atari.md compares its time), and
# the learner updates within which the target counts (issue 25: Pong's +18 within 40,000).
GAMES: dict[str, dict[str, Any]] = {
    "pong": {
        "env_id": "ALE/Pong-v5",
        "base": ["experiment=pong"],
        "json": "pong.json",
        "peer": None,
        "update_budget": 40_000,
    },
    "breakout": {
        "env_id": "ALE/Breakout-v5",
        "base": ["env=atari", "env.id=ALE/Breakout-v5"],
        "json": "breakout.json",
        "peer": DOPAMINE_BREAKOUT,
        "update_budget": None,
    },
}


def run_command(
    budget_s: float, run_dir: Path, overrides: list[str], game: str = "pong"
) -> list[str]:
    """The CLI command of one benchmark run."""
    return [
        sys.executable,
        "-m",
        "apex_dqn",
        *GAMES[game]["base"],
        f"train.max_seconds={budget_s:g}",
        f"output_dir={run_dir}",
        *overrides,
    ]


def window_means(evals: list[dict[str, Any]], width: int, count: int) -> list[float | None]:
    """The mean return of the evaluations in each env-step window (0, width], (width,
    2 width], ...: the run's counterpart of a peer's per-window training return (None: no
    evaluation fell in the window)."""
    means: list[float | None] = []
    for k in range(count):
        inside = [e["mean_return"] for e in evals if k * width < e["env_steps"] <= (k + 1) * width]
        means.append(sum(inside) / len(inside) if inside else None)
    return means


def peer_comparison(figures: dict[str, Any], peer: dict[str, Any]) -> dict[str, Any]:
    """The peer's curve and the run's at the same env-step windows, as far as the run went."""
    width = peer["window"]
    reached = (figures.get("env_steps") or 0) // width
    count = min(reached, *(len(v) for v in peer["agents"].values()))
    return {
        **{k: peer[k] for k in ("source", "what", "window")},
        "window_ends": [(k + 1) * width for k in range(count)],
        "apex_dqn": window_means(figures["evals"], width, count),
        "agents": {name: values[:count] for name, values in peer["agents"].items()},
    }


def updates_by(records: list[dict[str, Any]], env_steps: int) -> int | None:
    """Learner updates at the last report at or before ``env_steps`` (None: none was)."""
    before = [r for r in records if r["charts/env_steps"] <= env_steps]
    return int(before[-1]["charts/learner_steps"]) if before else None


def summarise(run_dir: Path, command: str, update_budget: int | None = None) -> dict[str, Any]:
    """The benchmark's figures from a finished run's ``summary.json`` and ``metrics.jsonl``;
    with ``update_budget``, also whether the target came within that many learner updates and
    the best evaluation that did (each evaluation carries the updates made by then)."""
    summary = json.loads((run_dir / "summary.json").read_text())
    records = read_jsonl(run_dir / "metrics.jsonl")
    config = yaml.safe_load((run_dir / "config.yaml").read_text()) or {}
    evals = [
        {**e, "learner_updates": updates_by(records, e["env_steps"])}
        for e in summary.get("evals") or []
    ]
    target = summary.get("target_return")
    # Updates at the solve: the report nearest the solving evaluation's env steps.
    updates_at_solve = None
    if summary.get("solved") and records:
        steps = summary["env_steps_at_solve"]
        nearest = min(records, key=lambda r: abs(r["charts/env_steps"] - steps))
        updates_at_solve = int(nearest["charts/learner_steps"])
    within = None
    if update_budget is not None:
        inside = [
            e["mean_return"]
            for e in evals
            if e["learner_updates"] is not None and e["learner_updates"] <= update_budget
        ]
        within = {
            "updates": update_budget,
            "target_reached": updates_at_solve is not None and updates_at_solve <= update_budget,
            "best_eval_return": max(inside) if inside else None,
        }
    return {
        "command": command,
        "env_id": summary["env_id"],
        "target_return": target,
        "solved": bool(summary.get("solved")),
        "time_to_target_s": summary.get("time_to_solve_s"),
        "env_steps_at_target": summary.get("env_steps_at_solve"),
        "learner_updates_at_target": updates_at_solve,
        "solve_eval_return": summary.get("solve_eval_return"),
        "confirm_eval_return": summary.get("confirm_eval_return"),
        "best_eval_return": summary.get("best_eval_return"),
        "final_eval_return": summary.get("final_eval_return"),
        "env_steps": summary.get("env_steps"),
        "learner_updates": summary.get("learner_steps"),
        "wall_s": summary.get("wall_s"),
        "env_steps_per_s": summary.get("env_steps_per_s"),
        "learner_updates_per_s": summary.get("learner_updates_per_s"),
        "stop_reason": summary.get("stop_reason"),
        "eval_epsilon": (config.get("eval") or {}).get("epsilon"),
        "within_update_budget": within,
        "evals": evals,
    }


def table(figures: dict[str, Any]) -> str:
    """The markdown table printed at the end."""

    def fmt(value: Any, spec: str = ",.0f") -> str:
        return "-" if value is None else format(value, spec)

    rows = []
    if figures["target_return"] is not None:  # Breakout runs to its budget, with no target
        rows += [
            ("target (greedy, eps 0.01, whole games)", fmt(figures["target_return"], "+.0f")),
            ("reached", "yes" if figures["solved"] else "no"),
            ("time from process start to confirmed target (s)", fmt(figures["time_to_target_s"])),
            ("env steps at target (x4 frames)", fmt(figures["env_steps_at_target"])),
            ("learner updates at target", fmt(figures["learner_updates_at_target"])),
            (
                "solving / confirming evaluation",
                f"{fmt(figures['solve_eval_return'], '+.2f')} / "
                f"{fmt(figures['confirm_eval_return'], '+.2f')}",
            ),
        ]
    within = figures.get("within_update_budget")
    if within:
        rows += [
            (
                f"target reached within {within['updates']:,} updates",
                "yes" if within["target_reached"] else "no",
            ),
            (
                f"best evaluation within {within['updates']:,} updates",
                fmt(within["best_eval_return"], "+.2f"),
            ),
        ]
    rows += [
        (
            "best / final evaluation",
            f"{fmt(figures['best_eval_return'], '+.2f')} / "
            f"{fmt(figures['final_eval_return'], '+.2f')}",
        ),
        (
            "learner updates per env step (whole run)",
            fmt(
                figures["learner_updates"] / figures["env_steps"]
                if figures.get("env_steps") and figures.get("learner_updates") is not None
                else None,
                ".3f",
            ),
        ),
        (
            "env steps/s, learner updates/s (whole run)",
            f"{fmt(figures['env_steps_per_s'])}, {fmt(figures['learner_updates_per_s'], '.1f')}",
        ),
    ]
    machine = figures.get("provenance", {}).get("machine")
    if machine:
        rows.append(
            (
                "machine",
                f"{machine['cpu']}, {machine['cores']} cores, native bf16 "
                f"{'yes' if machine['avx512_bf16'] else 'no'}",
            )
        )
    base = " ".join(figures.get("base", GAMES["pong"]["base"]))
    lines = [f"| {figures['env_id']}, {base} | |", "| --- | ---: |"]
    lines += [f"| {name} | {value} |" for name, value in rows]
    peer = figures.get("peer")
    if peer:
        agents = list(peer["agents"])
        lines += [
            "",
            f"| env steps (window end) | apex-dqn: evaluations (epsilon "
            f"{fmt(figures.get('eval_epsilon'), 'g')}), mean in window | {' | '.join(agents)} |",
            "| ---: | ---: |" + " ---: |" * len(agents),
        ]
        for k, end in enumerate(peer["window_ends"]):
            cells = [fmt(peer["apex_dqn"][k], ".1f")]
            cells += [fmt(peer["agents"][a][k], ".1f") for a in agents]
            lines.append(f"| {end:,} | {' | '.join(cells)} |")
        lines.append(f"\nPeer: {peer['source']}, {peer['what']}.")
    return "\n".join(lines)


def write_outputs(run_dir: Path, out: Path, figures: dict[str, Any], log: str | None) -> None:
    """Copy the run's small files to ``out``, redraw the curve, write ``pong.json``."""
    out.mkdir(parents=True, exist_ok=True)
    for name in RUN_FILES:
        src, dst = run_dir / name, out / name
        if src.exists() and not (dst.exists() and src.samefile(dst)):  # --from-run <out>
            shutil.copyfile(src, dst)
    if log is not None:
        (out / "console.log").write_text(log)
    evals = figures["evals"]
    plot_learning_curve(
        env_steps=[e["env_steps"] for e in evals],
        wall_s=[e["process_s"] if e.get("process_s") is not None else e["wall_s"] for e in evals],
        returns=[e["mean_return"] for e in evals],
        path=out / "learning_curve.png",
        title=f"apex-dqn {' '.join(figures.get('base', GAMES['pong']['base']))}, "
        f"{figures['provenance']['machine']['cores']} cores: "
        "greedy return "
        "(x: env steps; seconds since process start)",
        target=figures["target_return"],
    )
    write_json_atomic(out / GAMES[figures.get("game", "pong")]["json"], figures)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--game", choices=sorted(GAMES), default="pong", help="see GAMES")
    parser.add_argument("--budget-s", type=float, default=7200.0, help="train.max_seconds")
    parser.add_argument("--out", type=Path, required=True, help="where the files go")
    parser.add_argument("--override", action="append", default=[], help="extra CLI override")
    parser.add_argument("--from-run", type=Path, help="summarise this finished run instead")
    parser.add_argument("--command", help="with --from-run: the command that made the run")
    parser.add_argument("--commit", help="with --from-run: the commit it ran (default: HEAD)")
    args = parser.parse_args(argv)

    log = None
    if args.from_run is not None:
        run_dir = args.from_run
        command = args.command or "(not given)"
        if (run_dir / "console.log").exists():
            log = (run_dir / "console.log").read_text()
    else:
        run_dir = Path(tempfile.mkdtemp(prefix=f"{args.game}-run-"))
        cmd = run_command(args.budget_s, run_dir, args.override, args.game)
        command = " ".join(cmd[cmd.index("-m") + 1 :]).replace("apex_dqn", "apex-dqn", 1)
        print(f"running: {command}", flush=True)
        start = time.monotonic()
        proc = subprocess.run(cmd, capture_output=True, text=True, stdin=subprocess.DEVNULL)
        log = proc.stdout + proc.stderr
        if proc.returncode != 0:
            raise SystemExit(f"the run failed ({proc.returncode}): {log[-3000:]}")
        print(f"run finished in {time.monotonic() - start:,.0f} s", flush=True)
    # The record is the one taken as this process started (provenance.start): the commit and the
    # machine's load a live run ran with, not whatever HEAD is by the time it ends, hours later.
    record = provenance()
    if args.from_run is not None:  # the run was made earlier, perhaps by other code
        record["commit"], record["code_dirty"] = args.commit or record["commit"], None
        record["code_changed_during_run"] = None
    game = GAMES[args.game]
    figures = {
        **summarise(run_dir, command, game["update_budget"]),
        "game": args.game,
        "base": game["base"],
    }
    if figures["env_id"] != game["env_id"]:
        played = [g for g, v in GAMES.items() if v["env_id"] == figures["env_id"]]
        raise SystemExit(
            f"pong.py: --game {args.game} is {game['env_id']}, but the run played "
            f"{figures['env_id']} (--game one of: {', '.join(played) or 'none for that game'})"
        )
    figures["provenance"] = record
    if game["peer"] is not None:
        figures["peer"] = peer_comparison(figures, game["peer"])
    write_outputs(run_dir, args.out, figures, log)
    if args.from_run is None:
        shutil.rmtree(run_dir)  # checkpoints and replay snapshots: too large for docs/
    print(table(figures))


if __name__ == "__main__":
    main()
