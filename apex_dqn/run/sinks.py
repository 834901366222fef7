"""Where the driver's metrics records go: console, metrics.jsonl, TensorBoard and wandb.

This module owns the sinks. The driver alone writes metrics: every report interval it builds
one record (``RunTracker.record``: every key of the catalogue in ``metrics``, with
``charts/env_steps`` and ``charts/wall_s`` in each, so all sinks share one x-axis) and hands it
to every sink. ``metrics.jsonl`` is always written; the console line, TensorBoard and wandb
follow ``logging.*``. TensorBoard (torch's ``SummaryWriter``) and wandb are imported only when
enabled, and ``check_sinks`` fails before Ray starts when one is missing.
"""

from __future__ import annotations

import dataclasses
import math
import os
import time
import uuid
from pathlib import Path
from typing import Any, Protocol

from apex_dqn.config import Config, ConfigError
from apex_dqn.core.metrics import ENV_STEPS, JsonlWriter, status_line

WANDB_ID_FILE = "wandb_run_id"
TENSORBOARD_DIR = "tensorboard"


class Sink(Protocol):
    """Takes metrics records."""

    def write(self, record: dict[str, Any]) -> None:
        """Take one record."""

    def close(self) -> None:
        """Flush and release (the run is over)."""


def _scalars(record: dict[str, Any]) -> dict[str, float]:
    """The finite numbers of a record (TensorBoard and wandb take scalars only)."""
    return {
        k: float(v)
        for k, v in record.items()
        if isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)
    }


class JsonlSink:
    """``metrics.jsonl``: one JSON record per line, flushed each time."""

    def __init__(self, path: Path) -> None:
        self._writer = JsonlWriter(path)

    def write(self, record: dict[str, Any]) -> None:
        self._writer.write(record)

    def close(self) -> None:
        self._writer.close()


class ConsoleSink:
    """The status line, prefixed with the progress toward the nearest stop condition."""

    def __init__(self, cfg: Config) -> None:
        self._max_steps = cfg.train.max_env_steps
        self._max_s = cfg.train.max_seconds
        # train.max_seconds counts from here (just before the driver loop; also on a resume).
        self._start = time.time()

    def progress(self, record: dict[str, Any], now: float | None = None) -> float:
        """Fraction of the step or time budget used, whichever is further along, in [0, 1]."""
        elapsed = (time.time() if now is None else now) - self._start
        return min(1.0, max(record[ENV_STEPS] / self._max_steps, elapsed / self._max_s))

    def write(self, record: dict[str, Any]) -> None:
        print(f"{self.progress(record):4.0%} {status_line(record)}", flush=True)

    def close(self) -> None:
        """Nothing to release."""


class TensorBoardSink:
    """Event files in ``<run dir>/tensorboard``: each scalar against env steps."""

    def __init__(self, run_dir: Path) -> None:
        from torch.utils.tensorboard import SummaryWriter

        self._writer = SummaryWriter(log_dir=str(run_dir / TENSORBOARD_DIR))

    def write(self, record: dict[str, Any]) -> None:
        step = int(record[ENV_STEPS])
        for key, value in _scalars(record).items():
            if key != ENV_STEPS:
                self._writer.add_scalar(key, value, global_step=step)
        self._writer.flush()

    def close(self) -> None:
        self._writer.close()


class WandbSink:
    """One wandb run per training run: the config once, every record against env steps.

    The run id is kept in ``<run dir>/wandb_run_id``, so a resumed run (same directory)
    continues the same wandb run. ``close`` finishes the run, so the next job of a Hydra
    multirun, in the same process, starts its own.
    """

    def __init__(self, cfg: Config, run_dir: Path) -> None:
        import wandb

        id_file = run_dir / WANDB_ID_FILE
        run_id = id_file.read_text().strip() if id_file.is_file() else uuid.uuid4().hex[:12]
        id_file.write_text(run_id + "\n")
        w = cfg.logging.wandb
        self.run = wandb.init(
            mode=w.mode,  # type: ignore[arg-type]
            project=w.project,
            entity=w.entity,
            group=w.group,
            tags=list(w.tags),
            name=run_dir.name,
            id=run_id,
            resume="allow",
            dir=str(run_dir),
            config=dataclasses.asdict(cfg),
            reinit="finish_previous",  # a previous job's run in this process is finished
        )
        self.run.define_metric(ENV_STEPS)
        self.run.define_metric("*", step_metric=ENV_STEPS)

    def write(self, record: dict[str, Any]) -> None:
        self.run.log(_scalars(record))

    def close(self) -> None:
        self.run.finish()


def check_sinks(cfg: Config) -> None:
    """Raise ConfigError when an enabled sink's package is missing (called before Ray starts)."""
    import importlib.util

    if cfg.logging.tensorboard and importlib.util.find_spec("tensorboard") is None:
        raise ConfigError(
            "logging.tensorboard=true needs the tensorboard package: "
            "pip install 'apex-dqn[tensorboard]'"
        )
    if cfg.logging.wandb.enabled and importlib.util.find_spec("wandb") is None:
        raise ConfigError("logging=wandb needs the wandb package: pip install wandb")


def build_sinks(cfg: Config, run_dir: Path, metrics_path: Path) -> list[Sink]:
    """metrics.jsonl always, then the sinks ``cfg.logging`` turns on."""
    sinks: list[Sink] = [JsonlSink(metrics_path)]
    if cfg.logging.console:
        sinks.append(ConsoleSink(cfg))
    if cfg.logging.tensorboard:
        sinks.append(TensorBoardSink(run_dir))
    if cfg.logging.wandb.enabled:
        os.environ.setdefault("WANDB_SILENT", "true")
        sinks.append(WandbSink(cfg, run_dir))
    return sinks
