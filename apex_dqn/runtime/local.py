"""The same components in one process: the readable reference loop, used by tests.

One iteration lets every actor act for ``actors.steps_per_call`` vector steps and push its
batches, then lets the learner update as long as the replay ratio allows, then evaluates when
``eval.interval_s`` has passed. Weights go through a ``ParameterServer`` exactly as under Ray
(actors pull every ``actors.sync_every`` steps, only when the version changed), so policy lag and
the data flow are the same, just sequential.
"""

from __future__ import annotations

import contextlib
import dataclasses
import time
from pathlib import Path
from typing import Any

import numpy as np

from apex_dqn import seeding
from apex_dqn.actor import make_actor
from apex_dqn.config import Config
from apex_dqn.envs import EnvInfo
from apex_dqn.evaluate import Evaluator
from apex_dqn.learner import Learner
from apex_dqn.metrics import RunTracker, learner_metric_dict
from apex_dqn.parameter_server import ParameterServer
from apex_dqn.replay import make_replay, sharded
from apex_dqn.runtime import common


class LocalRun:
    """All components of a run in this process (see module docstring)."""

    def __init__(self, cfg: Config, info: EnvInfo, tracker: RunTracker) -> None:
        self.cfg = cfg
        self.tracker = tracker
        self.actors = [
            make_actor(**common.actor_kwargs(cfg, info, i, generation=tracker.resumes))
            for i in range(cfg.actors.num_actors)
        ]
        self.shards = [
            make_replay(**common.replay_kwargs(cfg, info, s)) for s in range(cfg.replay.num_shards)
        ]
        self.learner = Learner(**common.learner_kwargs(cfg, info))
        self.evaluator = (
            Evaluator(**common.evaluator_kwargs(cfg, info, generation=tracker.resumes))
            if cfg.eval.enabled
            else None
        )
        self.ps = ParameterServer()
        self.ps.set_weights(self.learner.get_weights(), 0)
        self._rng = np.random.default_rng(seeding.derive(cfg.seed, seeding.LEARNER, 0))
        self._next_shard = 0
        self._last_eval = -float("inf")

    def _act(self) -> None:
        sync_steps = max(1, self.cfg.actors.sync_every // self.cfg.actors.envs_per_actor)
        for i, actor in enumerate(self.actors):
            done = 0
            while done < self.cfg.actors.steps_per_call:
                weights, version = self.ps.get_if_newer(actor.weights_version)
                if weights is not None:
                    actor.set_weights(weights, version)
                chunk = min(sync_steps, self.cfg.actors.steps_per_call - done)
                batches, report = actor.run_steps(chunk)
                done += chunk
                for batch in batches:
                    self.shards[self._next_shard].add(batch)  # type: ignore[arg-type]
                    self._next_shard = (self._next_shard + 1) % len(self.shards)
                self.tracker.env_steps += report.env_steps
                self.tracker.add_actor_report(
                    i,
                    {
                        "env_steps": report.env_steps,
                        "episode_returns": report.episode_returns,
                        "episode_lengths": report.episode_lengths,
                        "epsilon": actor.epsilon,
                    },
                )
                self.tracker.actor_versions[i] = report.weights_version

    def _learn(self) -> None:
        cfg = self.cfg.learner
        stats = [s.stats() for s in self.shards]
        while sharded.total_size(stats) >= self.cfg.replay.min_size_to_learn:
            drawn = (self.learner.learner_steps + 1) * cfg.batch_size
            if not sharded.replay_ratio_allows(
                samples_drawn=drawn, stats=stats, max_ratio=cfg.max_replay_ratio
            ):
                break
            shard = sharded.pick_shard(stats, cfg.batch_size, self._rng)
            if shard is None:
                break
            sample = self.shards[shard].sample(cfg.batch_size, self.learner.beta())
            metrics, priorities_B = self.learner.step(sample.batch, sample.weights_B)
            self.shards[shard].update_priorities(sample.ids_B, priorities_B)
            stats[shard] = self.shards[shard].stats()
            if self.learner.learner_steps % cfg.publish_every == 0:
                self.ps.set_weights(self.learner.get_weights(), self.learner.learner_steps)
                self.tracker.weights_version = self.learner.learner_steps
            self.tracker.learner_metrics = learner_metric_dict(metrics)
        self.tracker.learner_steps = self.learner.learner_steps
        self.tracker.skipped_updates = self.learner.skipped_updates
        self.tracker.replay = sharded.totals(stats)

    def _maybe_evaluate(self) -> bool:
        if self.evaluator is None:  # eval.enabled=false
            return False
        if time.monotonic() - self._last_eval < self.cfg.eval.interval_s:
            return False
        self._last_eval = time.monotonic()
        weights, version = self.ps.get_if_newer(-1)
        # Once solved, evaluations need no confirmation (train.stop_on_target=false runs on).
        result = self.evaluator.evaluate(
            weights, version, confirm=self.tracker.time_to_solve_s is None
        )
        return self.tracker.add_eval(result.mean_return, dataclasses.asdict(result))

    def iterate(self) -> bool:
        """One round of acting, learning and (maybe) evaluating; True when the target is hit."""
        self._act()
        self._learn()
        return self._maybe_evaluate()


class _SinkCloser:
    """Closes the run's sinks when training leaves early (an exception): no wandb run is left
    open in a process that runs further jobs."""

    def __init__(self, outputs: common.RunOutputs) -> None:
        self._outputs = outputs

    def close(self) -> None:
        self._outputs.close_sinks()


def train_local(
    cfg: Config, info: EnvInfo, out_dir: Path, resume: common.Resume | None = None
) -> dict[str, Any]:
    """Train in this process with the same stop rules and outputs as the Ray runtime."""
    from apex_dqn.checkpoint import state_from_bytes, state_to_bytes

    tracker = RunTracker(
        env_id=cfg.env.id,
        seed=cfg.seed,
        target_return=common.target_return(cfg, info),
        batch_size=cfg.learner.batch_size,
    )
    if resume is not None:
        resume.apply_to(tracker)
    run = LocalRun(cfg, info, tracker)
    if resume is not None:
        run.learner.load_state_dict(state_from_bytes(resume.data)["learner"])
        run.ps.set_weights(run.learner.get_weights(), run.learner.learner_steps, force=True)
    outputs = common.RunOutputs(out_dir, cfg, tracker)

    def checkpoint() -> None:
        extra = common.checkpoint_extra(cfg, info, tracker)
        outputs.save_checkpoint(state_to_bytes({**extra, "learner": run.learner.state_dict()}))

    next_report = time.time() + cfg.train.report_interval_s
    every = cfg.checkpoint.every_s
    next_checkpoint = time.time() + every if every > 0 else float("inf")
    deadline = time.time() + cfg.train.max_seconds
    with common.StopSignals() as signals, contextlib.closing(_SinkCloser(outputs)):
        while True:
            reached = run.iterate()
            now = time.time()
            if now >= next_report:
                outputs.report()
                next_report += cfg.train.report_interval_s
            if now >= next_checkpoint:
                checkpoint()
                next_checkpoint = now + every
            if signals.received is not None:
                tracker.stop_reason = f"interrupted by {signals.name}"
                tracker.interrupted_by = signals.received
            elif reached and cfg.train.stop_on_target:
                tracker.stop_reason = "target return reached"
            elif tracker.env_steps >= cfg.train.max_env_steps:
                tracker.stop_reason = "train.max_env_steps reached"
            elif now >= deadline:
                tracker.stop_reason = "train.max_seconds reached"
            if tracker.stop_reason is not None:
                break
        outputs.report()
        checkpoint()
        return outputs.finish()
