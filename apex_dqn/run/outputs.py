"""The files of one run directory: config, metrics, checkpoints, summary and plots; and a run
to resume.

Neither Ray nor torch is imported here: the driver of a Ray run never needs torch, so it does not
pay for importing it.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import yaml

from apex_dqn.config import Config
from apex_dqn.envs.factory import EnvInfo
from apex_dqn.files import checkpoint as ckpt
from apex_dqn.files.atomic import write_json_atomic
from apex_dqn.run.sinks import build_sinks
from apex_dqn.run.state import RunTracker

CHECKPOINT_FORMAT = ckpt.FORMAT
CONFIG_FILE = "config.yaml"
METRICS_FILE = "metrics.jsonl"
CHECKPOINT_FILE = ckpt.LATEST
CURVE_FILE = "learning_curve.png"
TRAINING_PLOT = "training.png"
SUMMARY_FILE = "summary.json"


def checkpoint_extra(cfg: Config, info: EnvInfo, tracker: RunTracker) -> dict[str, Any]:
    """The plain-data part of a checkpoint besides the learner's state."""
    return {
        "format": CHECKPOINT_FORMAT,
        "config": dataclasses.asdict(cfg),
        "env": dataclasses.asdict(info),
        "env_steps": tracker.env_steps,
        "learner_steps": tracker.learner_steps,
        "weights_version": tracker.weights_version,
        "tracker": tracker.state_dict(),
    }


class RunOutputs:
    """The files of one run directory: config, metrics, summary and plot."""

    def __init__(self, out_dir: Path, cfg: Config, tracker: RunTracker) -> None:
        self.dir = Path(out_dir).resolve()
        self.dir.mkdir(parents=True, exist_ok=True)
        self.cfg = cfg
        self.tracker = tracker
        (self.dir / CONFIG_FILE).write_text(yaml.safe_dump(dataclasses.asdict(cfg)))
        self._sinks = build_sinks(cfg, self.dir, self.dir / METRICS_FILE)
        best = max((e.mean_return for e in tracker.evals), default=None)
        self.checkpoints = ckpt.CheckpointManager(
            self.dir,
            keep_last=cfg.checkpoint.keep_last,
            save_best=cfg.checkpoint.save_best,
            best_return=best if cfg.resume else None,
        )

    def save_checkpoint(self, data: bytes) -> Path:
        """Write checkpoint bytes (latest, periodic, maybe best; see ``CheckpointManager``)."""
        evals = self.tracker.evals
        return self.checkpoints.save(
            data,
            learner_steps=self.tracker.learner_steps,
            eval_return=evals[-1].mean_return if evals else None,
        )

    @property
    def checkpoint_path(self) -> Path:
        return self.dir / CHECKPOINT_FILE

    def report(self) -> dict[str, Any]:
        """Build one metrics record and hand it to every sink (metrics.jsonl, console, ...)."""
        rec = self.tracker.record()
        for sink in self._sinks:
            sink.write(rec)
        return rec

    def close_sinks(self) -> None:
        """Close every sink once (a wandb run is finished); later calls do nothing."""
        sinks, self._sinks = self._sinks, []
        for sink in sinks:
            sink.close()

    def finish(self) -> dict[str, Any]:
        """Write summary.json and the plots, close the sinks; return the summary."""
        self.close_sinks()
        summary = self.tracker.summary()
        write_json_atomic(self.dir / SUMMARY_FILE, summary)
        if self.cfg.train.plot and (self.dir / METRICS_FILE).is_file():
            from apex_dqn.files.plotting import load_run, plot_runs

            plot_runs(
                [load_run(self.dir)],
                self.dir / TRAINING_PLOT,
                title=f"apex-dqn on {self.cfg.env.id} (seed {self.cfg.seed}): learning, "
                "throughput and loss",
            )
        if self.cfg.train.plot and self.tracker.evals:
            from apex_dqn.files.plotting import plot_learning_curve

            plot_learning_curve(
                env_steps=[e.env_steps for e in self.tracker.evals],
                wall_s=[e.wall_s for e in self.tracker.evals],
                returns=[e.mean_return for e in self.tracker.evals],
                path=self.dir / CURVE_FILE,
                title=f"apex-dqn on {self.cfg.env.id} (seed {self.cfg.seed})",
                target=self.tracker.target_return,
            )
        return summary


@dataclasses.dataclass
class Resume:
    """A run to continue: its directory, its latest checkpoint's bytes and their contents."""

    run_dir: Path
    data: bytes
    state: dict[str, Any]

    def apply_to(self, tracker: RunTracker) -> None:
        """Continue the saved counters and learning curve in ``tracker``."""
        tracker.load_state_dict(self.state.get("tracker", {}))
        tracker.resumes += 1
