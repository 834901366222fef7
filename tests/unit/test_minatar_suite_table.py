"""docs/figures/minatar_suite/table.py: the README's MinAtar table marks every missed target."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def _module():
    path = ROOT / "docs" / "figures" / "minatar_suite" / "table.py"
    spec = importlib.util.spec_from_file_location("minatar_suite_table", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _figures(game: str, confirmed: float | None, ratio: float, speedup: float | None) -> dict:
    apex = {
        "final_return_median": 12.34,
        "best_return_median": 20.0,
        "time_to_target_median_s": confirmed,
        "env_steps_median": 1_234_567,
        "updates_median": 40_000,
    }
    summary = {
        "apex": apex,
        "sb3": {"final_return_median": 1.0},
        "reference_return": 20.0,
        "return_ratio_vs_sb3": ratio,
        "speedup_vs_sb3": speedup,
    }
    provenance = {"commit": "3409751" + "0" * 33, "date": "2026-12-07T08:30:14+00:00"}
    return {"game": game, "summary": summary, "provenance": provenance}


def test_rows_mark_each_missed_target_and_only_those(tmp_path):
    table = _module()
    met = table.row(_figures("Seaquest", 300.0, 12.3, 8.0))
    assert met == (
        "| Seaquest | 20 | 12.3 / 20.0 | 300 s | 1.0 | 12.3x | 8.0x | 1,234,567 / 40,000 "
        "| 2026-12-07, 3409751 |"
    )
    assert table.row({**_figures("Seaquest", 300.0, 12.3, 8.0), "provenance": {}}).endswith("| - |")
    missed = table.row(_figures("Seaquest", None, 1.2, None))
    assert "not reached (**miss**)" in missed and "1.2x (**miss**)" in missed
    assert "-x (**miss**)" in missed
    (tmp_path / "Breakout.json").write_text(json.dumps(_figures("Breakout", 90.0, 2.0, 4.0)))
    text = table.table(tmp_path)
    assert text.count("\n| Breakout |") == 1 and "Seaquest" not in text
