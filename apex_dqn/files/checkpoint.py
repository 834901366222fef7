"""Checkpoints: written atomically, rotated, loaded as data only.

A checkpoint is a ``torch.save`` of plain data: tensors, numbers, strings, lists and dicts (the
learner's state, RNG states, counters, the resolved config as a dict and what the environment
looks like). It is written to a temporary file in the same directory and renamed into place, so a
crash mid-write never leaves a truncated checkpoint; it is read with ``weights_only=True``, so
loading a checkpoint never runs code.

The learner serialises its state to bytes (``state_to_bytes``) and the driver writes them
(``CheckpointManager``): the run directory lives where the driver runs, which on a cluster need
not be the learner's node. torch is imported inside the functions that need it, so the driver of
a Ray run, which only moves bytes, never loads it.

Layout of a run directory::

    checkpoint.pt                 the latest checkpoint (what resume and learner restarts use)
    checkpoint_best.pt            taken after the best greedy evaluation (checkpoint.save_best)
    checkpoints/step-000012345.pt the last checkpoint.keep_last periodic ones
"""

from __future__ import annotations

import io
import os
from pathlib import Path
from typing import Any

from apex_dqn.files.atomic import write_bytes_atomic

FORMAT = "apex-dqn/1"
LATEST = "checkpoint.pt"
BEST = "checkpoint_best.pt"
PERIODIC_DIR = "checkpoints"


class CheckpointError(RuntimeError):
    """A checkpoint that is missing, corrupt, or does not fit the current run."""


def state_to_bytes(state: dict[str, Any]) -> bytes:
    """``torch.save`` of ``state`` into memory."""
    import torch

    buf = io.BytesIO()
    torch.save(state, buf)
    return buf.getvalue()


def state_from_bytes(data: bytes, map_location: str = "cpu", name: str = "checkpoint") -> dict:
    """Inverse of ``state_to_bytes``, data only (``weights_only=True``); CheckpointError if bad."""
    import torch

    try:
        state = torch.load(io.BytesIO(data), map_location=map_location, weights_only=True)
    except Exception as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise CheckpointError(f"{name} is not a readable apex-dqn checkpoint ({first})") from None
    if not isinstance(state, dict) or state.get("format") != FORMAT:
        raise CheckpointError(f"{name} is not an apex-dqn checkpoint (no format {FORMAT!r})")
    return state


def save_checkpoint(path: str | os.PathLike, state: dict[str, Any]) -> Path:
    """Write ``state`` to ``path`` atomically; return the path."""
    return write_bytes_atomic(path, state_to_bytes(state))


def load_checkpoint(path: str | os.PathLike, map_location: str = "cpu") -> dict[str, Any]:
    """Read a checkpoint written by ``save_checkpoint``; CheckpointError when unreadable."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"checkpoint {str(path)!r} does not exist")
    return state_from_bytes(path.read_bytes(), map_location, name=f"checkpoint {str(path)!r}")


def run_checkpoint_path(run_dir: str | os.PathLike) -> Path:
    """The latest checkpoint of a run directory; CheckpointError if it is not a run directory."""
    run = Path(run_dir)
    if not run.is_dir():
        raise CheckpointError(f"resume={str(run_dir)!r}: no such directory")
    path = run / LATEST
    if not path.is_file():
        raise CheckpointError(
            f"resume={str(run_dir)!r} is not an apex-dqn run directory (it has no {LATEST})"
        )
    return path


class CheckpointManager:
    """Writes a run's checkpoints: the latest, the last ``keep_last`` periodic ones, the best.

    Args:
        run_dir: the run directory.
        keep_last: periodic checkpoints to keep in ``checkpoints/``.
        save_best: also keep ``checkpoint_best.pt``.
        best_return: the best eval return of earlier checkpoints (a resumed run).
    """

    def __init__(
        self,
        run_dir: str | os.PathLike,
        *,
        keep_last: int,
        save_best: bool,
        best_return: float | None = None,
    ) -> None:
        self.dir = Path(run_dir)
        self.keep_last = keep_last
        self.save_best = save_best
        self.best_return = best_return

    @property
    def latest_path(self) -> Path:
        return self.dir / LATEST

    def periodic_paths(self) -> list[Path]:
        """The periodic checkpoints on disk, oldest first."""
        return sorted((self.dir / PERIODIC_DIR).glob("step-*.pt"))

    def save(self, data: bytes, *, learner_steps: int, eval_return: float | None) -> Path:
        """Write ``data`` as the latest checkpoint and a periodic one; rotate; maybe the best."""
        latest = write_bytes_atomic(self.latest_path, data)
        periodic = self.dir / PERIODIC_DIR / f"step-{learner_steps:09d}.pt"
        write_bytes_atomic(periodic, data)
        for old in self.periodic_paths()[: -self.keep_last]:
            old.unlink(missing_ok=True)
        if (
            self.save_best
            and eval_return is not None
            and (self.best_return is None or eval_return > self.best_return)
        ):
            self.best_return = eval_return
            write_bytes_atomic(self.dir / BEST, data)
        return latest


def check_compatible(
    state: dict[str, Any],
    *,
    env_id: str,
    obs_shape: tuple[int, ...],
    num_actions: int,
    network: dict,
) -> None:
    """CheckpointError unless ``state`` was taken for this environment and network shape."""
    env = state.get("env", {})
    saved_id = state.get("config", {}).get("env", {}).get("id")
    saved_net = state.get("config", {}).get("network", {})
    if saved_id is not None and saved_id != env_id:
        raise CheckpointError(f"the checkpoint is for env.id={saved_id}, not env.id={env_id}")
    if tuple(env.get("obs_shape", obs_shape)) != tuple(obs_shape) or int(
        env.get("num_actions", num_actions)
    ) != int(num_actions):
        raise CheckpointError(
            f"the checkpoint's observations/actions {tuple(env.get('obs_shape', ()))}/"
            f"{env.get('num_actions')} do not match {env_id}'s {tuple(obs_shape)}/{num_actions}"
        )
    for key in ("torso", "hidden_sizes", "dueling"):
        if key in saved_net and saved_net[key] != network.get(key):
            raise CheckpointError(
                f"the checkpoint's network.{key}={saved_net[key]} does not match "
                f"network.{key}={network.get(key)}"
            )
