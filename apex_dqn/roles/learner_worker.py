"""The learner role: a ``Learner`` fed by a ``SampleFeeder``, publishing to the weight store.

With ``learner.num_learners`` = K > 1 this is learner ``rank`` of K: each samples its own
batches, sends their priorities to the shards they came from, and steps in collective rounds
with the others (``LearnerGroup.round``) after ``join_group``. Rank 0 publishes the weights and
is the one the driver checkpoints.
"""

from __future__ import annotations

import os
import time
from typing import TYPE_CHECKING, Any

import numpy as np

from apex_dqn.config import LearnerConfig, ReplayConfig
from apex_dqn.core import seeding
from apex_dqn.core.metrics import (
    IS_WEIGHT_MEAN,
    IS_WEIGHT_MIN,
    LEARNER_PHASES,
    PRIORITY_MAX,
    PRIORITY_MEAN,
    learner_metric_dict,
)
from apex_dqn.core.reports import LearnerReport, Restored
from apex_dqn.core.rules import PhaseTimer
from apex_dqn.roles.feeder import FedBatch, SampleFeeder
from apex_dqn.roles.ports import LearnerComponent, ReplayPort, WeightStore

if TYPE_CHECKING:
    from apex_dqn.algo.learner import StepResult

# How long a learner of a group waits in a collective for the others before failing. Rounds
# normally follow each other within milliseconds; a checkpoint or restore on one learner holds
# the others for seconds. A dead learner is handled by the driver long before this.
GROUP_TIMEOUT_S = 600.0


class LearnerWorker:
    """Runs a ``Learner`` against the shards (see module docstring).

    Args:
        learner: the ``Learner``.
        replay_cfg: the replay's config (the size learning starts at).
        replay: the shards.
        weights: the weight store.
        seed: the run's seed (each learner of a group draws its own shards).
        rank: this learner's rank in its group.
        publish_now: announce the fresh network at once; a restarted learner waits for the
            driver's ``restore`` (its latest checkpoint) instead.
    """

    def __init__(
        self,
        learner: LearnerComponent,
        *,
        replay_cfg: ReplayConfig,
        replay: ReplayPort,
        weights: WeightStore,
        seed: int,
        rank: int = 0,
        publish_now: bool = True,
    ) -> None:
        self.learner = learner
        self.cfg: LearnerConfig = learner.cfg
        self._replay_cfg = replay_cfg
        self.rank = rank
        self.num_learners = self.cfg.num_learners
        self._weights = weights
        self._seed = seed
        self.timer = PhaseTimer(LEARNER_PHASES)
        self.feeder = SampleFeeder(
            self.learner,
            replay=replay,
            cfg=self.cfg,
            replay_cfg=self._replay_cfg,
            rng=np.random.default_rng(seeding.derive(seed, seeding.LEARNER, rank)),
            timer=self.timer,
            samples_per_update=self.cfg.batch_size * self.num_learners,
        )
        self.group: Any = None  # a LearnerGroup once join_group has run
        self._last_metrics: dict[str, float] = {}
        self.published_version = -1
        self.batches_learned = 0  # by this learner (in a group: its share of the updates)
        self.first_update_at: float | None = None  # wall-clock, for the start-up figure
        if publish_now:
            self.publish()

    def device(self) -> str:
        """The torch device the learner runs on."""
        return str(self.learner.device)

    def publish(self, force: bool = False) -> int:
        """Publish the online weights as the version ``learner_steps``; return it. ``force``
        replaces newer weights (after a restore from an older checkpoint)."""
        version = self.learner.learner_steps
        if self.rank != 0:
            return version  # the group's weights are rank 0's to publish
        with self.timer.phase("publishing"):
            self._weights.publish(self.learner.get_weights(), version, force)
        self.published_version = version
        return version

    def _publish_if_due(self) -> None:
        if self.learner.learner_steps % self.cfg.publish_every == 0:
            self.publish()

    def _learned(self, item: FedBatch, result: StepResult) -> None:
        """After an update on ``item``: its priorities, a publish when due, the metrics."""
        if self.first_update_at is None:
            self.first_update_at = time.time()
        self.batches_learned += 1
        priorities_B = result.priorities_B
        self.feeder.learned(item, priorities_B)
        self._publish_if_due()
        self._last_metrics = {
            **learner_metric_dict(result.metrics),
            PRIORITY_MEAN: float(priorities_B.mean()),
            PRIORITY_MAX: float(priorities_B.max()),
            IS_WEIGHT_MEAN: float(item.weights_B.mean()),
            IS_WEIGHT_MIN: float(item.weights_B.min()),
        }

    def run_for(self, seconds: float, until_idle: bool = False) -> LearnerReport:
        """Train for about ``seconds``; ``until_idle``: return early when no batch can be had
        (one process, where the actors act only between learner calls).

        In a group every learner must be called together: a call ends at the first round after
        any learner's ``seconds`` have passed, on all of them at the same update.
        """
        start_steps = self.learner.learner_steps
        if self.num_learners > 1:
            self._run_group(seconds)
        else:
            self._run_alone(seconds, until_idle)
        self.feeder.refresh_if_stale()
        return self._report(self.learner.learner_steps - start_steps)

    def _run_alone(self, seconds: float, until_idle: bool) -> None:
        """One update per batch the feeder has staged, until ``seconds`` have passed."""
        for item in self.feeder.batches(time.monotonic() + seconds, until_idle=until_idle):
            with self.timer.phase("learning"):
                result = self.learner.step(item.staged)
            self._learned(item, result)

    def _run_group(self, seconds: float) -> None:
        """Every iteration is one collective round, to which this learner brings its oldest
        staged batch if it has one (else nothing)."""
        deadline = time.monotonic() + seconds
        for item in self.feeder.rounds():
            stepped_before = self.learner.learner_steps
            with self.timer.phase("learning"):
                staged = item.staged if item is not None else None
                result, stop = self.group.round(staged, stop=time.monotonic() >= deadline)
            if item is not None:
                assert result is not None  # a learner that brought a batch gets its result
                self._learned(item, result)
            elif self.learner.learner_steps != stepped_before:
                self._publish_if_due()
            if stop:
                return

    def close(self) -> None:
        """Release the feeder's staging threads; the worker is not used afterwards."""
        self.feeder.close()

    def status(self) -> LearnerReport:
        """Counters and replay totals now, without training (what ``run_for`` returns)."""
        return self._report(0)

    def _report(self, updates: int) -> LearnerReport:
        book = self.feeder.book
        return LearnerReport(
            updates=updates,
            batches_learned=self.batches_learned,
            learner_steps=self.learner.learner_steps,
            weights_version=self.published_version,
            skipped_updates=self.learner.skipped_updates,
            replay=self.feeder.totals(),
            metrics=dict(self._last_metrics),
            shard_failures=book.failures,
            shard_restarts=book.restarts,
            shards_down=len(book.down),
            seconds=dict(self.timer.seconds),
            first_update_at=self.first_update_at,
        )

    def checkpoint_bytes(self, extra: dict[str, Any]) -> bytes:
        """The learner's state, RNG states and ``extra`` as checkpoint bytes (the driver writes
        them, so the run directory need not be on the learner's node)."""
        import torch

        from apex_dqn.files.checkpoint import state_to_bytes

        rng = {"torch": torch.get_rng_state(), "numpy": self.feeder.rng.bit_generator.state}
        # The driver's counters may trail the learner by one call; the learner's own count is
        # the one that matches the saved networks.
        steps = self.learner.learner_steps
        extra = {**extra, "learner_steps": steps}
        if "tracker" in extra:
            extra["tracker"] = {**extra["tracker"], "learner_steps": steps}
        return state_to_bytes({**extra, "learner": self.learner.state_dict(), "rng": rng})

    def restore(self, data: bytes | None) -> Restored:
        """Load checkpoint bytes (None: keep the fresh network) and publish the weights; answer
        with the restored steps and a digest of the online weights (a resumed run records it,
        so that a test can compare it with the checkpoint's)."""
        import torch

        from apex_dqn.algo.networks import weights_digest
        from apex_dqn.files.checkpoint import state_from_bytes

        if data is not None:
            state = state_from_bytes(data, map_location="cpu")
            self.learner.load_state_dict(state["learner"])
            rng = state.get("rng", {})
            if "torch" in rng:
                torch.set_rng_state(rng["torch"])
            if "numpy" in rng and self.rank == 0:
                self.feeder.rng.bit_generator.state = rng["numpy"]
            elif self.rank > 0:  # rank 0's saved sampler would repeat rank 0's draws
                steps = self.learner.learner_steps
                self.feeder.rng = np.random.default_rng(
                    seeding.derive(self._seed, seeding.LEARNER, self.rank, steps)
                )
            self.feeder.rebase(grace=self._replay_cfg.min_size_to_learn)
        version = self.publish(force=True)
        return Restored(
            learner_steps=self.learner.learner_steps,
            weights_version=version,
            weights_digest=weights_digest(self.learner.get_weights()),
        )

    def weights_digest(self) -> str:
        """A digest of the online weights (tests compare the learners of a group)."""
        from apex_dqn.algo.networks import weights_digest

        return weights_digest(self.learner.get_weights())

    def join_group(self, address: str, port: int) -> int:
        """Join the torch.distributed group of all learners at rank 0's ``address:port``
        (every learner calls this at once; it returns when all have joined), then take rank
        0's networks. Returns this learner's process id."""
        from datetime import timedelta

        import torch
        import torch.distributed as dist

        backend = self.cfg.dist_backend
        if backend == "auto":
            backend = "nccl" if self.learner.device.type == "cuda" else "gloo"
        host = f"[{address}]" if ":" in address else address
        device_id = None
        if backend == "nccl":  # NCCL binds each rank to its GPU (Ray makes it cuda:0 here)
            device = self.learner.device
            device_id = device if device.index is not None else torch.device("cuda", 0)
        dist.init_process_group(
            backend,
            init_method=f"tcp://{host}:{port}",
            rank=self.rank,
            world_size=self.num_learners,
            timeout=timedelta(seconds=GROUP_TIMEOUT_S),
            device_id=device_id,
        )
        from apex_dqn.algo.learner import Learner
        from apex_dqn.algo.learner_group import LearnerGroup

        assert isinstance(self.learner, Learner), "a group averages a Learner's gradients"
        self.group = LearnerGroup(self.learner, dist.group.WORLD)
        self.group.broadcast_from(0)
        return os.getpid()
