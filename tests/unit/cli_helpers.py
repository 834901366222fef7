"""What the command-line tools' tests share."""

from __future__ import annotations

import subprocess


def fails_in_one_line(proc: subprocess.CompletedProcess, *fragments: str) -> None:
    """The CLIs' standard for bad input: exit 2, one line naming the culprit, no traceback."""
    assert proc.returncode == 2, proc.stderr
    assert all(f in proc.stderr for f in fragments), proc.stderr
    assert "Traceback" not in proc.stderr and len(proc.stderr.strip().splitlines()) == 1
