"""The README's MinAtar table from the suite's JSONs (``run.sh``): one row per game, each of the
issue's three targets marked as met or missed, and when and by which commit the row was made
(the games are remade one session at a time, so a table can hold rows of two commits).

    python docs/figures/minatar_suite/table.py > docs/figures/minatar_suite/table.md
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
GAMES = ("Asterix", "Breakout", "Freeway", "Seaquest", "SpaceInvaders")
# The issue's targets against SB3: apex-dqn's median final return at least this many times
# SB3's, and SB3's final return reached at least this many times sooner than SB3's budget.
RETURN_RATIO = 1.5
SPEEDUP = 3.0


def _num(value: float | None, spec: str) -> str:
    return "-" if value is None else format(value, spec)


def _mark(ok: bool) -> str:
    return "" if ok else " (**miss**)"


def _made(record: dict) -> str:
    """The date and short commit of a JSON's provenance record ("-" for a record without)."""
    date, commit = str(record.get("date") or "")[:10], str(record.get("commit") or "")[:7]
    return f"{date}, {commit}" if date and commit else "-"


def row(figures: dict) -> str:
    """One game's row."""
    s = figures["summary"]
    apex, sb3 = s["apex"], s.get("sb3", {})
    reference = s["reference_return"]
    confirmed = apex["time_to_target_median_s"]
    reached = f"{confirmed:.0f} s" if confirmed is not None else "not reached"
    ratio, speedup = s["return_ratio_vs_sb3"], s["speedup_vs_sb3"]
    cells = [
        figures["game"],
        f"{reference:g}",
        f"{_num(apex['final_return_median'], '.1f')} / {_num(apex['best_return_median'], '.1f')}",
        reached + _mark(confirmed is not None),
        f"{_num(sb3.get('final_return_median'), '.1f')}",
        _num(ratio, ".1f") + "x" + _mark(ratio is not None and ratio >= RETURN_RATIO),
        _num(speedup, ".1f") + "x" + _mark(speedup is not None and speedup >= SPEEDUP),
        f"{_num(apex['env_steps_median'], ',.0f')} / {_num(apex['updates_median'], ',.0f')}",
        _made(figures.get("provenance") or {}),
    ]
    return "| " + " | ".join(cells) + " |"


def table(directory: Path = HERE) -> str:
    """The table of every game with a JSON in ``directory``."""
    lines = [
        "| game | reference DQN (5M frames) | apex-dqn final / best (median) "
        "| apex-dqn: confirmed reference (median) | SB3 final (median) "
        f"| final return vs SB3 (target {RETURN_RATIO:g}x) "
        f"| SB3's 10-min return reached sooner (target {SPEEDUP:g}x) "
        "| apex-dqn env steps / updates (median) | made (date, commit) |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- |",
    ]
    for game in GAMES:
        path = directory / f"{game}.json"
        if path.exists():
            lines.append(row(json.loads(path.read_text())))
    return "\n".join(lines)


if __name__ == "__main__":
    sys.stdout.write(table(Path(sys.argv[1]) if len(sys.argv) > 1 else HERE) + "\n")
