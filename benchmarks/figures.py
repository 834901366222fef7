"""The figure registry: every number the README and docs/ quote, tied to the JSON it comes from.

``docs/figures/index.yaml`` lists each quoted figure: the document (``doc``), the text as quoted
(``quote``), the JSON file (``json``), the key in it (``key``, dotted; list items by index) and
how the value is written (``format``, a Python format string, e.g. ``"{:.1f}"``). Two checks:

- ``check``: each quote is in its document, and the JSON's value, formatted, is the quote; each
  JSON records its provenance (commit, command, machine, date: ``provenance.py``). The test
  suite runs it, so a figure changed in the text or in its JSON alone fails.
- ``stale``: the figures whose JSON was made by a commit whose ``apex_dqn/`` or ``conf/`` differ
  from HEAD's, or by uncommitted code, or by code that changed while it ran, or that record no
  commit: what to rerun.
- ``requote``: after a rerun, each figure whose JSON now gives another value gets it: in the
  index, and in its document where the old quote stands once (elsewhere it is listed, to edit by
  hand; a text already giving the new value only has the index follow). Read the diff before
  committing: the prose around a number may need to change with it.

Every JSON file a page names (README.md and docs/, by its path from the repository, the page or
docs/) is accounted for: either a registered figure comes from it, or the index lists it under
``history`` with the date it was made and its commit (the one the JSON records, else the one that
added the file: the code that made it is no newer). A history file is a past measurement kept to
show why something is as it is, not a claim about the current code, so ``check`` requires each
paragraph that names it to give that date and commit, where a reader sees them.

    python benchmarks/figures.py check
    python benchmarks/figures.py stale
    python benchmarks/figures.py requote [--json docs/figures/x.json ...]
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent))
from provenance import code_changed_files

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


@dataclass(frozen=True)
class History:
    """A JSON kept as a dated past measurement (see the module docstring)."""

    json: str
    date: str
    commit: str
    what: str


def _entries(path: Path, section: str, fields: set[str]) -> list[dict[str, Any]]:
    """The index's ``section``; ValueError naming an entry without exactly ``fields``."""
    entries = (yaml.safe_load(path.read_text()) or {}).get(section) or []
    for i, entry in enumerate(entries):
        if not isinstance(entry, dict) or set(entry) != fields:
            name = "figure" if section == "figures" else f"{section} entry"
            raise ValueError(f"{path}: {name} {i} must have exactly {sorted(fields)}: {entry!r}")
    return entries


def load_history(path: Path = INDEX) -> list[History]:
    """The index's history entries (ValueError as for ``load_index``; a date not YYYY-MM-DD or
    a commit not 7 to 40 hex digits is one too)."""
    out = [History(**e) for e in _entries(path, "history", set(History.__dataclass_fields__))]
    for h in out:
        if not re.fullmatch(r"\d{4}-\d{2}-\d{2}", str(h.date)):
            raise ValueError(f"{path}: history {h.json}: date must be YYYY-MM-DD, got {h.date!r}")
        if not re.fullmatch(r"[0-9a-f]{7,40}", str(h.commit)):
            raise ValueError(f"{path}: history {h.json}: commit must be 7 to 40 hex digits")
    return out


def load_index(path: Path = INDEX) -> list[Figure]:
    """The registry's entries; ValueError naming an entry without exactly the five fields."""
    return [Figure(**e) for e in _entries(path, "figures", set(Figure.__dataclass_fields__))]


def quoted(quote: str, text: str) -> bool:
    """Whether ``quote`` stands in ``text`` as a whole figure: not inside a longer number
    ("12.5" is not quoted by "112.5" or "12.55")."""
    return _whole(quote).search(text) is not None


def _whole(quote: str) -> re.Pattern[str]:
    """``quote`` as a whole figure: not preceded by a digit or point, not followed by a digit."""
    return re.compile(rf"(?<![\d.]){re.escape(quote)}(?!\d)")


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


def pages(root: Path = ROOT) -> list[Path]:
    """The documents that may quote figures: README.md and every page under docs/."""
    return [root / "README.md", *sorted((root / "docs").rglob("*.md"))]


def named_jsons(root: Path = ROOT) -> dict[str, list[tuple[str, str]]]:
    """Each JSON file the pages name (its path from ``root``), with each (page, paragraph) that
    names it, outside fenced code (a command naming where it writes quotes nothing). A name is
    read from the repository root, then the page's folder, docs/, then docs/figures/; a name
    that is no file in any of them (an output's name) is no source."""
    found: dict[str, list[tuple[str, str]]] = {}
    for page in pages(root):
        if not page.exists():
            continue
        doc = page.relative_to(root).as_posix()
        prose = re.sub(r"^```.*?^```", "", page.read_text(), flags=re.S | re.M)
        for paragraph in re.split(r"\n\s*\n", prose):
            for name in dict.fromkeys(re.findall(r"[\w./-]+\.json\b", paragraph)):
                for base in (root, page.parent, root / "docs", root / "docs" / "figures"):
                    path = (base / name).resolve()
                    if path.is_file() and path.is_relative_to(root.resolve()):
                        key = path.relative_to(root.resolve()).as_posix()
                        if (doc, paragraph) not in found.get(key, []):
                            found.setdefault(key, []).append((doc, paragraph))
                        break
    return found


def _marked_as_history(path: Path) -> bool:
    """Whether a history JSON says so itself (``"history": true``), so that a reader of the file
    alone sees a dated past measurement; a bare list (no place for the mark) passes."""
    data = json.loads(path.read_text(encoding="utf-8"))
    return not isinstance(data, dict) or data.get("history") is True


def unaccounted(figures: list[Figure], history: list[History], root: Path = ROOT) -> list[str]:
    """What the pages name that neither the registry nor the history accounts for, and history
    entries that are wrong: no file, also registered, named by no page, or named in a paragraph
    that does not give their date and commit."""
    found = []
    registered = {fig.json for fig in figures}
    dated = {h.json: h for h in history}
    names = named_jsons(root)
    for json_path, where in sorted(names.items()):
        if json_path not in registered and json_path not in dated:
            docs = ", ".join(sorted({doc for doc, _ in where}))
            found.append(f"{docs}: {json_path} is neither a registered figure's source nor history")
    for h in history:
        if not (root / h.json).is_file():
            found.append(f"history {h.json}: no such file")
        elif not _marked_as_history(root / h.json):
            found.append(f'history {h.json}: the file does not say "history": true')
        if h.json in registered:
            found.append(f"history {h.json}: also a registered figure's source (current or not?)")
        if h.json not in names:
            found.append(f"history {h.json}: no page names it")
        for doc, paragraph in names.get(h.json, []):
            if h.date not in paragraph or h.commit[:7] not in paragraph:
                found.append(
                    f"{doc}: the paragraph naming {h.json} does not give its date {h.date}"
                    f" and commit {h.commit[:7]}"
                )
    return found


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
        elif record.get("code_changed_during_run"):
            out.append((fig, f"the code changed while it ran (from {commit[:8]})"))
        else:
            changed = code_changed_files(commit, root)
            if changed is None:
                out.append((fig, f"commit {commit[:8]!r} is not one of this repository's"))
            elif changed:  # named, so a reader can judge whether the change touches the figure
                out.append((fig, f"changed since {commit[:8]}: {_listed(changed)}"))
    return out


def occurrences(quote: str, text: str) -> int:
    """How many times ``quote`` stands in ``text`` as a whole figure (see ``quoted``)."""
    return len(_whole(quote).findall(text))


def _index_line(fig: Figure, quote: str) -> str:
    """The start of ``fig``'s line in the index with ``quote`` (quotes are written as JSON
    strings, which YAML reads alike)."""
    return f"{{doc: {fig.doc}, quote: {json.dumps(quote)}, json: {fig.json}, key: {fig.key},"


def requote(
    index: Path = INDEX, root: Path = ROOT, jsons: set[str] | None = None
) -> tuple[list[str], list[str]]:
    """Give each figure (of ``jsons``, else all) the value its JSON gives now, in the index and,
    where its old quote stands once, in its document. Returns (what was changed, what is left
    to edit by hand)."""
    changed: list[str] = []
    left: list[str] = []
    index_text = index.read_text()
    for fig in load_index(index):
        if jsons is not None and fig.json not in jsons:
            continue
        try:
            new = fig.format.format(lookup(json.loads((root / fig.json).read_text()), fig.key))
        except (OSError, KeyError, IndexError, TypeError, ValueError) as exc:
            left.append(f"{fig.doc}: {fig.quote!r}: no value in {fig.json} {fig.key} ({exc!r})")
            continue
        if new == fig.quote:
            continue
        doc = root / fig.doc
        text = doc.read_text()
        old_n, new_n = occurrences(fig.quote, text), occurrences(new, text)
        where = f"{fig.doc}: {fig.quote!r} -> {new!r}"
        if old_n == 1:
            at = _whole(fig.quote).search(text)
            assert at is not None
            doc.write_text(text[: at.start()] + new + text[at.end() :])
        elif not (old_n == 0 and new_n):
            left.append(f"{where}: the old quote stands {old_n} times; edit the text by hand")
            continue
        line = _index_line(fig, fig.quote)
        if index_text.count(line) != 1:
            left.append(f"{where}: its index line is not written as {line!r}; edit it by hand")
            continue
        index_text = index_text.replace(line, _index_line(fig, new))
        index.write_text(index_text)
        changed.append(where if old_n == 1 else f"{where} (the text had it already)")
    return changed, left


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("command", choices=("check", "stale", "requote"))
    parser.add_argument("--index", type=Path, default=INDEX)
    parser.add_argument(
        "--json", action="append", default=None, help="requote: only figures from this JSON"
    )
    args = parser.parse_args(argv)
    if args.command == "requote":
        changed, left = requote(args.index, jsons=set(args.json) if args.json else None)
        for line in changed:
            print(f"requoted {line}")
        for line in left:
            print(f"by hand: {line}")
        print(f"{len(changed)} requoted, {len(left)} to edit by hand")
        return 1 if left else 0
    figures = load_index(args.index)
    if args.command == "check":
        history = load_history(args.index)
        found = problems(figures) + unaccounted(figures, history)
        for line in found:
            print(line)
        print(f"{len(figures)} figures, {len(history)} history files, {len(found)} problems")
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
