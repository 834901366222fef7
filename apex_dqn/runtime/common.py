"""What the Ray runtime and the single-process loop share: component arguments and run outputs.

Neither Ray nor torch is imported here: the driver of a Ray run never needs torch, so it does not
pay for importing it.
"""

from __future__ import annotations

import dataclasses
import signal
from pathlib import Path
from types import FrameType, TracebackType
from typing import Any

import yaml

from apex_dqn import checkpoint as ckpt
from apex_dqn import seeding
from apex_dqn.config import Config
from apex_dqn.envs import EnvInfo
from apex_dqn.exploration import actor_epsilons
from apex_dqn.metrics import RunTracker, write_json_atomic
from apex_dqn.sinks import build_sinks

CHECKPOINT_FORMAT = ckpt.FORMAT
CONFIG_FILE = "config.yaml"
METRICS_FILE = "metrics.jsonl"
CHECKPOINT_FILE = ckpt.LATEST
REPLAY_DIR = "replay"
CURVE_FILE = "learning_curve.png"
TRAINING_PLOT = "training.png"
SUMMARY_FILE = "summary.json"


def target_return(cfg: Config, info: EnvInfo) -> float | None:
    """train.target_return, or the spec's reward_threshold when unset."""
    return cfg.train.target_return if cfg.train.target_return is not None else info.reward_threshold


def actor_kwargs(cfg: Config, info: EnvInfo, index: int, generation: int = 0) -> dict[str, Any]:
    """Keyword arguments of ``Actor`` number ``index``; each actor gets its own seed.

    ``generation`` (the number of resumes) shifts the seeds so that a resumed run does not
    replay the episodes it has already seen.
    """
    return {
        "actor_index": index,
        "env": cfg.env,
        "network": cfg.network,
        "algo": cfg.algo,
        "actors": cfg.actors,
        "num_actions": info.num_actions,
        "obs_shape": info.obs_shape,
        "obs_dtype": info.obs_dtype,
        "frame_batches": frame_storage(cfg),
        "seed": seeding.actor_seed(cfg.seed, index, generation),
    }


def learner_kwargs(cfg: Config, info: EnvInfo) -> dict[str, Any]:
    """Keyword arguments of ``Learner``."""
    eps = actor_epsilons(cfg.actors.num_actors, eps=cfg.actors.eps_base, alpha=cfg.actors.eps_alpha)
    return {
        "obs_shape": info.obs_shape,
        "num_actions": info.num_actions,
        "network": cfg.network,
        "algo": cfg.algo,
        "learner": cfg.learner,
        "replay": cfg.replay,
        "actor_epsilons": eps,
        "seed": cfg.seed,
    }


def frame_storage(cfg: Config) -> bool:
    """Whether actors push frames once and shards store them once (Atari, replay.frame_dedup)."""
    return cfg.env.atari is not None and cfg.replay.frame_dedup


def replay_kwargs(cfg: Config, info: EnvInfo, shard: int) -> dict[str, Any]:
    """Keyword arguments of ``PrioritizedReplay`` for shard ``shard`` (capacity split evenly)."""
    return {
        "capacity": cfg.replay.capacity // cfg.replay.num_shards,
        "obs_shape": info.obs_shape,
        "obs_dtype": info.obs_dtype,
        "frames": frame_storage(cfg),
        "alpha": cfg.replay.alpha,
        "priority_eps": cfg.replay.priority_eps,
        "seed": seeding.shard_seed(cfg.seed, shard),
    }


def evaluator_kwargs(cfg: Config, info: EnvInfo, generation: int = 0) -> dict[str, Any]:
    """Keyword arguments of ``Evaluator`` (its seeds come from the run's seed tree too)."""
    return {
        "env": cfg.env,
        "network": cfg.network,
        "obs_shape": info.obs_shape,
        "num_actions": info.num_actions,
        "episodes": cfg.eval.episodes,
        "epsilon": cfg.eval.epsilon,
        "seed": seeding.evaluator_seed(cfg.seed, generation),
        "confirm_at": target_return(cfg, info),
        "vector_mode": cfg.actors.vector_mode,
    }


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


def snapshot_path(cfg: Config, out_dir: Path, shard: int) -> str | None:
    """Where shard ``shard`` keeps its replay snapshot (None when snapshots are off)."""
    if cfg.replay.snapshot_every_s <= 0:
        return None
    return str(Path(out_dir).resolve() / REPLAY_DIR / f"shard{shard}.npz")


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
            from apex_dqn.plotting import load_run, plot_runs

            plot_runs(
                [load_run(self.dir)],
                self.dir / TRAINING_PLOT,
                title=f"apex-dqn on {self.cfg.env.id} (seed {self.cfg.seed}): learning, "
                "throughput and loss",
            )
        if self.cfg.train.plot and self.tracker.evals:
            from apex_dqn.plotting import plot_learning_curve

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


class StopSignals:
    """While active, SIGINT and SIGTERM ask the run to stop instead of killing it.

    The driver loop sees ``received`` and stops as for any other reason: a final checkpoint is
    written, outputs are finished, Ray shuts down, and the CLI exits with 128 + the signal
    number. A second signal restores the default behaviour (a user pressing Ctrl-C twice).
    Outside the main thread (signals cannot be caught there) it does nothing.
    """

    SIGNALS = (signal.SIGINT, signal.SIGTERM)

    def __init__(self) -> None:
        self.received: int | None = None
        self._previous: dict[int, Any] = {}

    @property
    def name(self) -> str:
        return signal.Signals(self.received).name if self.received is not None else ""

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        if self.received is not None:
            self._restore()
            signal.raise_signal(signum)
            return
        self.received = signum
        print(f"apex-dqn: {signal.Signals(signum).name} received, stopping", flush=True)

    def _restore(self) -> None:
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)
        self._previous = {}

    def __enter__(self) -> StopSignals:
        try:
            for sig in self.SIGNALS:
                self._previous[sig] = signal.signal(sig, self._handle)
        except ValueError:  # not the main thread
            self._restore()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._restore()
