"""The figure registry: every number the README and docs/ quote, tied to the JSON it comes from.

``docs/figures/index.yaml`` lists each quoted figure: the document (``doc``), the text as quoted
(``quote``), the JSON file (``json``), the key in it (``key``, dotted; list items by index) and
how the value is written (``format``, a Python format string, e.g. ``"{:.1f}"``). Two checks:

- ``check``: each quote is in its document, and the JSON's value, formatted, is the quote; each
  JSON records its provenance (commit, command, machine, date: ``provenance.py``). The test
  suite runs it, so a figure changed in the text or in its JSON alone fails.
- ``stale``: the figures whose JSON was made by a commit whose ``apex_dqn/`` or ``conf/`` differ
  from HEAD's, or by uncommitted code, or that record no commit: what to rerun.

    python benchmarks/figures.py check
    python benchmarks/figures.py stale
"""

from __future__ import annotations

import argparse
import json
import re
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent))
from provenance import CODE_PATHS

ROOT = Path(__file__).resolve().parents[1]
INDEX = ROOT / "docs" / "figures" / "index.yaml"
PROVENANCE_KEYS = ("commit", "command", "machine", "date")


@dataclass(frozen=True)
class Figure:
    """One quoted figure (see the module docstring)."""

    doc: str
    quote: str
    json: str
    key: str
    format: str


def load_index(path: Path = INDEX) -> list[Figure]:
    """The registry's entries; ValueError naming an entry without exactly the five fields."""
    entries = (yaml.safe_load(path.read_text()) or {}).get("figures", [])
    fields = set(Figure.__dataclass_fields__)
    for i, entry in enumerate(entries):
        if not isinstance(entry, dict) or set(entry) != fields:
            raise ValueError(f"{path}: figure {i} must have exactly {sorted(fields)}: {entry!r}")
    return [Figure(**entry) for entry in entries]


def quoted(quote: str, text: str) -> bool:
    """Whether ``quote`` stands in ``text`` as a whole figure: not inside a longer number
    ("12.5" is not quoted by "112.5" or "12.55")."""
    return re.search(rf"(?<![\d.]){re.escape(quote)}(?!\d)", text) is not None


def lookup(data: Any, key: str) -> Any:
    """``data[k1][k2]...`` for the dotted ``key`` (an integer part indexes a list)."""
    for part in key.split("."):
        data = data[int(part)] if isinstance(data, list) else data[part]
    return data


def problems(figures: list[Figure], root: Path = ROOT) -> list[str]:
    """What is wrong with each figure: not quoted, not what its JSON says, no provenance."""
    found = []
    for fig in figures:
        where = f"{fig.doc}: {fig.quote!r}"
        text = (root / fig.doc).read_text() if (root / fig.doc).exists() else None
        if text is None:
            found.append(f"{where}: no such document")
            continue
        if not quoted(fig.quote, text):
            found.append(f"{where}: not in the document")
        path = root / fig.json
        if not path.exists():
            found.append(f"{where}: {fig.json} does not exist")
            continue
        try:
            data = json.loads(path.read_text())
        except ValueError as exc:
            found.append(f"{where}: {fig.json} is not JSON ({exc})")
            continue
        try:
            rendered = fig.format.format(lookup(data, fig.key))
        except (KeyError, IndexError, TypeError, ValueError) as exc:
            found.append(f"{where}: {fig.json} has no usable {fig.key} ({exc!r})")
            continue
        if rendered != fig.quote:
            found.append(f"{where}: {fig.json} {fig.key} gives {rendered!r}")
        record = data.get("provenance") if isinstance(data, dict) else None
        missing = [k for k in PROVENANCE_KEYS if not (record or {}).get(k)]
        if missing:
            found.append(f"{where}: {fig.json} records no {', '.join(missing)}")
    return found


def _code_changed_since(commit: str, root: Path) -> list[str] | None:
    """The files of apex_dqn/ and conf/ that differ between ``commit`` and HEAD (None: an
    unknown commit, or no git)."""
    if not re.fullmatch(r"[0-9a-f]{7,40}", commit):
        return None
    try:
        proc = subprocess.run(
            [
                "git",
                "-C",
                str(root),
                "diff",
                "-z",
                "--name-only",
                commit,
                "HEAD",
                "--",
                *CODE_PATHS,
            ],
            capture_output=True,
            text=True,
        )
    except OSError:  # no git
        return None
    return [p for p in proc.stdout.split("\0") if p] if proc.returncode == 0 else None


def _listed(paths: list[str], most: int = 3) -> str:
    """``paths``, the first ``most`` of them named and the rest counted."""
    more = f" and {len(paths) - most} more" if len(paths) > most else ""
    return ", ".join(paths[:most]) + more


def stale(figures: list[Figure], root: Path = ROOT) -> list[tuple[Figure, str]]:
    """The figures to remake, each with why."""
    out = []
    for fig in figures:
        path = root / fig.json
        if not path.exists():
            out.append((fig, "its JSON does not exist"))
            continue
        data = json.loads(path.read_text())
        record = (data.get("provenance") or {}) if isinstance(data, dict) else {}
        commit = record.get("commit")
        if not commit:
            out.append((fig, "records no commit"))
        elif record.get("code_dirty"):
            out.append((fig, f"made by uncommitted changes on {commit[:8]}"))
        else:
            changed = _code_changed_since(commit, root)
            if changed is None:
                out.append((fig, f"commit {commit[:8]!r} is not one of this repository's"))
            elif changed:  # named, so a reader can judge whether the change touches the figure
                out.append((fig, f"changed since {commit[:8]}: {_listed(changed)}"))
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("command", choices=("check", "stale"))
    parser.add_argument("--index", type=Path, default=INDEX)
    args = parser.parse_args(argv)
    figures = load_index(args.index)
    if args.command == "check":
        found = problems(figures)
        for line in found:
            print(line)
        print(f"{len(figures)} figures, {len(found)} problems")
        return 1 if found else 0
    old = stale(figures)
    print("| document | figure | JSON | why stale |")
    print("| --- | --- | --- | --- |")
    for fig, why in old:
        print(f"| {fig.doc} | {fig.quote} | {fig.json} | {why} |")
    print(f"\n{len(old)} of {len(figures)} figures stale")
    return 0


if __name__ == "__main__":
    sys.exit(main())
