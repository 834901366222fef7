"""Checkpoints: written atomically, loaded as data only.

A checkpoint is a ``torch.save`` of plain data: tensors, numbers, strings, lists and dicts (the
learner's state, counters, the resolved config as a dict and what the environment looks like).
It is written to a temporary file in the same directory and renamed into place, so a crash
mid-write never leaves a truncated checkpoint; it is read with ``weights_only=True``, so loading a
checkpoint never runs code.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import torch


class CheckpointError(RuntimeError):
    """A checkpoint that is missing, corrupt, or does not fit the current run."""


def save_checkpoint(path: str | os.PathLike, state: dict[str, Any]) -> Path:
    """Write ``state`` to ``path`` atomically (temporary file, fsync, rename); return the path."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp.{os.getpid()}")
    try:
        with tmp.open("wb") as f:
            torch.save(state, f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return path


def load_checkpoint(path: str | os.PathLike, map_location: str = "cpu") -> dict[str, Any]:
    """Read a checkpoint written by ``save_checkpoint``; CheckpointError when unreadable."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"checkpoint {str(path)!r} does not exist")
    try:
        state = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as exc:
        raise CheckpointError(
            f"checkpoint {str(path)!r} is not a readable apex-dqn checkpoint: {exc}"
        ) from None
    if not isinstance(state, dict) or "format" not in state:
        raise CheckpointError(f"checkpoint {str(path)!r} has no apex-dqn 'format' field")
    return state
