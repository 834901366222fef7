"""Pong to +18 with the defaults: one ``experiment=pong`` run, its curves and figures as JSON.

The run is the CLI exactly as a user starts it, with only a time budget added:

    python -m apex_dqn experiment=pong train.max_seconds=<budget> output_dir=<run dir>

It stops at its first confirmed evaluation at or above +18 (the mean of ``eval.episodes`` whole
games, unclipped, epsilon 0.01, then a second set of games with the same weights), or at the
budget. Time is counted from the creation of the run's process (imports, Ray start-up and all).
This script then writes, under ``--out``: the run's small files (``summary.json``,
``metrics.jsonl``, ``config.yaml``, ``console.log``, ``training.png``), ``learning_curve.png``
(greedy return against env steps and against seconds since process start) and ``pong.json``
(the command, the machine, the commit, time and env steps to the target, and every evaluation);
a markdown table goes to stdout.

    python benchmarks/pong.py --budget-s 7200 --out docs/pong_2cores
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

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

sys.path.insert(0, str(ROOT / "benchmarks"))

from provenance import provenance  # noqa: E402

from apex_dqn.files.atomic import write_json_atomic  # noqa: E402
from apex_dqn.files.plotting import plot_learning_curve  # noqa: E402

RUN_FILES = ("summary.json", "metrics.jsonl", "config.yaml", "training.png")


def run_command(budget_s: float, run_dir: Path, overrides: list[str]) -> list[str]:
    """The CLI command of one benchmark run."""
    return [
        sys.executable,
        "-m",
        "apex_dqn",
        "experiment=pong",
        f"train.max_seconds={budget_s:g}",
        f"output_dir={run_dir}",
        *overrides,
    ]


def summarise(run_dir: Path, command: str) -> dict[str, Any]:
    """The benchmark's figures from a finished run's ``summary.json`` and ``metrics.jsonl``."""
    summary = json.loads((run_dir / "summary.json").read_text())
    records = [json.loads(x) for x in (run_dir / "metrics.jsonl").read_text().splitlines() if x]
    evals = summary.get("evals") or []
    target = summary.get("target_return")
    # Updates at the solve: the report nearest the solving evaluation's env steps.
    updates_at_solve = None
    if summary.get("solved") and records:
        steps = summary["env_steps_at_solve"]
        nearest = min(records, key=lambda r: abs(r["charts/env_steps"] - steps))
        updates_at_solve = int(nearest["charts/learner_steps"])
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
        "evals": evals,
    }


def table(figures: dict[str, Any]) -> str:
    """The markdown table printed at the end."""

    def fmt(value: Any, spec: str = ",.0f") -> str:
        return "-" if value is None else format(value, spec)

    rows = [
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
        (
            "best / final evaluation",
            f"{fmt(figures['best_eval_return'], '+.2f')} / "
            f"{fmt(figures['final_eval_return'], '+.2f')}",
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
    lines = [f"| {figures['env_id']}, experiment=pong | |", "| --- | ---: |"]
    lines += [f"| {name} | {value} |" for name, value in rows]
    return "\n".join(lines)


def write_outputs(run_dir: Path, out: Path, figures: dict[str, Any], log: str | None) -> None:
    """Copy the run's small files to ``out``, redraw the curve, write ``pong.json``."""
    out.mkdir(parents=True, exist_ok=True)
    for name in RUN_FILES:
        if (run_dir / name).exists():
            shutil.copyfile(run_dir / name, out / name)
    if log is not None:
        (out / "console.log").write_text(log)
    evals = figures["evals"]
    plot_learning_curve(
        env_steps=[e["env_steps"] for e in evals],
        wall_s=[e["process_s"] if e.get("process_s") is not None else e["wall_s"] for e in evals],
        returns=[e["mean_return"] for e in evals],
        path=out / "learning_curve.png",
        title=f"apex-dqn experiment=pong, {figures['provenance']['machine']['cores']} cores: "
        "greedy return "
        "(x: env steps; seconds since process start)",
        target=figures["target_return"],
    )
    write_json_atomic(out / "pong.json", figures)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
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
        run_dir = Path(tempfile.mkdtemp(prefix="pong-run-"))
        cmd = run_command(args.budget_s, run_dir, args.override)
        command = " ".join(cmd[cmd.index("-m") + 1 :]).replace("apex_dqn", "apex-dqn", 1)
        print(f"running: {command}", flush=True)
        start = time.monotonic()
        proc = subprocess.run(cmd, capture_output=True, text=True, stdin=subprocess.DEVNULL)
        log = proc.stdout + proc.stderr
        if proc.returncode != 0:
            raise SystemExit(f"the run failed ({proc.returncode}): {log[-3000:]}")
        print(f"run finished in {time.monotonic() - start:,.0f} s", flush=True)
    record = provenance()
    if args.from_run is not None:  # the run was made earlier, perhaps by other code
        record["commit"], record["code_dirty"] = args.commit or record["commit"], None
    figures = {**summarise(run_dir, command), "provenance": record}
    write_outputs(run_dir, args.out, figures, log)
    if args.from_run is None:
        shutil.rmtree(run_dir)  # checkpoints and replay snapshots: too large for docs/
    print(table(figures))


if __name__ == "__main__":
    main()
