"""What the Ray runtime and the single-process loop share: component arguments and run outputs.

Neither Ray nor torch is imported here: the driver of a Ray run never needs torch, so it does not
pay for importing it.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import yaml

from apex_dqn.config import Config
from apex_dqn.envs import EnvInfo
from apex_dqn.exploration import actor_epsilons
from apex_dqn.metrics import JsonlWriter, RunTracker, status_line, write_json_atomic

CHECKPOINT_FORMAT = "apex-dqn/1"
CONFIG_FILE = "config.yaml"
METRICS_FILE = "metrics.jsonl"
CHECKPOINT_FILE = "checkpoint.pt"
CURVE_FILE = "learning_curve.png"
SUMMARY_FILE = "summary.json"


def target_return(cfg: Config, info: EnvInfo) -> float | None:
    """train.target_return, or the spec's reward_threshold when unset."""
    return cfg.train.target_return if cfg.train.target_return is not None else info.reward_threshold


def actor_kwargs(cfg: Config, info: EnvInfo, index: int) -> dict[str, Any]:
    """Keyword arguments of ``Actor`` number ``index``; each actor gets its own seed."""
    return {
        "actor_index": index,
        "env": cfg.env,
        "network": cfg.network,
        "algo": cfg.algo,
        "actors": cfg.actors,
        "num_actions": info.num_actions,
        "obs_shape": info.obs_shape,
        "seed": cfg.seed * 10_007 + 1 + index,
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


def replay_kwargs(cfg: Config, info: EnvInfo, shard: int) -> dict[str, Any]:
    """Keyword arguments of ``PrioritizedReplay`` for shard ``shard`` (capacity split evenly)."""
    return {
        "capacity": cfg.replay.capacity // cfg.replay.num_shards,
        "obs_shape": info.obs_shape,
        "alpha": cfg.replay.alpha,
        "priority_eps": cfg.replay.priority_eps,
        "seed": cfg.seed * 10_007 + 5_000 + shard,
    }


def evaluator_kwargs(cfg: Config, info: EnvInfo) -> dict[str, Any]:
    """Keyword arguments of ``Evaluator`` (its seeds are disjoint from the actors')."""
    return {
        "env": cfg.env,
        "network": cfg.network,
        "obs_shape": info.obs_shape,
        "num_actions": info.num_actions,
        "episodes": cfg.eval.episodes,
        "seed": cfg.seed * 10_007 + 1_000_000,
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
    }


class RunOutputs:
    """The files of one run directory: config, metrics, summary and plot."""

    def __init__(self, out_dir: Path, cfg: Config, tracker: RunTracker) -> None:
        self.dir = Path(out_dir).resolve()
        self.dir.mkdir(parents=True, exist_ok=True)
        self.cfg = cfg
        self.tracker = tracker
        (self.dir / CONFIG_FILE).write_text(yaml.safe_dump(dataclasses.asdict(cfg)))
        self._metrics = JsonlWriter(self.dir / METRICS_FILE)

    @property
    def checkpoint_path(self) -> Path:
        return self.dir / CHECKPOINT_FILE

    def report(self, *, quiet: bool = False) -> dict[str, Any]:
        """Append a metrics record and print the status line."""
        rec = self.tracker.record()
        self._metrics.write(rec)
        if not quiet:
            print(status_line(rec), flush=True)
        return rec

    def finish(self) -> dict[str, Any]:
        """Write summary.json and the learning curve; return the summary."""
        self._metrics.close()
        summary = self.tracker.summary()
        write_json_atomic(self.dir / SUMMARY_FILE, summary)
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
