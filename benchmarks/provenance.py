"""Where a benchmark figure comes from: the commit, the command, the machine and the date.

Every benchmark's JSON carries ``provenance()`` under the key ``provenance``, so that a figure can
be traced to the code that made it and a stale one noticed (the code under ``apex_dqn/`` or
``conf/`` changed since its commit). The machine record names what changes the figures most on
a CPU: the model, the core count, native bf16 (it sets the Atari learner's speed about 2.7x) and
the thread count the runs inherit.
"""

from __future__ import annotations

import datetime
import os
import platform
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
# The paths whose changes make a figure stale: the package and its configuration.
CODE_PATHS = ("apex_dqn", "conf")


def _git(*args: str, root: Path | None = None) -> str | None:
    try:
        out = subprocess.run(
            ["git", "-C", str(root or ROOT), *args], capture_output=True, text=True, check=True
        )
    except (OSError, subprocess.CalledProcessError):
        return None
    return out.stdout.strip()


def commit() -> str | None:
    """HEAD of the checkout the benchmark runs from (None outside a git checkout)."""
    return _git("rev-parse", "HEAD") or None


def code_dirty() -> bool | None:
    """Whether ``apex_dqn/`` or ``conf/`` differ from HEAD (uncommitted changes): a figure made
    so does not belong to its commit. None outside a git checkout."""
    out = _git("status", "--porcelain", "--", *CODE_PATHS)
    return None if out is None else bool(out)


def machine() -> dict[str, Any]:
    """CPU model, cores, native bf16, the inherited OMP_NUM_THREADS and the load at start."""
    model: str | None = None
    flags: set[str] = set()
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.exists():
        for line in cpuinfo.read_text().splitlines():
            if line.startswith("model name") and model is None:
                model = line.split(":", 1)[1].strip()
            elif line.startswith("flags") and not flags:
                flags = set(line.split(":", 1)[1].split())
    return {
        "cpu": model or platform.processor() or platform.machine(),
        "cores": os.cpu_count(),
        "avx512_bf16": "avx512_bf16" in flags,
        "omp_num_threads": os.environ.get("OMP_NUM_THREADS"),
        "load_average_at_start": os.getloadavg()[0],
        "python": platform.python_version(),
    }


def _now() -> str:
    return datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")


def start() -> dict[str, Any]:
    """Take the benchmark's start record: commit, dirty code, machine (its load) and date. The
    module does so when imported, that is as the benchmark starts, so a run of hours records
    the code and the load it ran with, not what they are when it writes its JSON."""
    global _started
    _started = {
        "commit": commit(),
        "code_dirty": code_dirty(),
        "machine": machine(),
        "date": _now(),
    }
    return _started


def code_changed_files(commit: str, root: Path | None = None) -> list[str] | None:
    """The files of ``apex_dqn/`` and ``conf/`` that differ between ``commit`` and HEAD (None:
    not a commit's hash, one this checkout lacks, or no git)."""
    if not re.fullmatch(r"[0-9a-f]{7,40}", commit):
        return None
    out = _git("diff", "-z", "--name-only", commit, "HEAD", "--", *CODE_PATHS, root=root)
    return None if out is None else [p for p in out.split("\0") if p]


def code_changed_since(start_commit: str | None, start_dirty: bool | None) -> bool | None:
    """Whether ``apex_dqn/`` or ``conf/`` are now other than at a clean start on
    ``start_commit`` (a commit or an edit made while a benchmark ran); None where that cannot be
    told: no git, or the code was already dirty at the start."""
    if start_commit is None or start_dirty is not False:
        return None
    dirty, changed = code_dirty(), code_changed_files(start_commit)
    if dirty is None or changed is None:
        return None
    return dirty or bool(changed)


def provenance(argv: list[str] | None = None) -> dict[str, Any]:
    """The record every benchmark JSON carries: the commit, whether the code was dirty, the
    machine and the UTC date at the start (``start``), the command (``argv``, default
    ``sys.argv``), the date it finished and whether the code changed meanwhile."""
    argv = sys.argv if argv is None else argv
    began = _started or start()
    return {
        "commit": began["commit"],
        "code_dirty": began["code_dirty"],
        "command": " ".join(["python", *argv]),
        "machine": began["machine"],
        "date": began["date"],
        "finished": _now(),
        "code_changed_during_run": code_changed_since(began["commit"], began["code_dirty"]),
    }


_started: dict[str, Any] | None = None
start()
