"""The actor role: runs an ``Actor``, pulls weights when due, pushes its batches to the shards.

Pushes go to the shards in turn, starting at the actor's index, several pushes in a row to one
shard (``PUSHES_PER_SHARD``) so that a frame replay finds the frames a push shares with the
previous one. At most ``actors.max_pending_pushes`` are in flight before the worker waits for a
shard (backpressure). With ``actors.min_replay_ratio`` > 0 it pauses while it is further ahead
of the learner than that ratio allows (``ActorThrottle``).
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from typing import Any

from apex_dqn.config import ActorsConfig
from apex_dqn.core.metrics import ACTOR_PHASES
from apex_dqn.core.reports import ActorReport
from apex_dqn.core.rules import ActorThrottle, PhaseTimer
from apex_dqn.roles.ports import ActorComponent, ReplayPort, ShardDown, WeightStore

PUSHES_PER_SHARD = 8
# A throttled actor polls the weight store this often: the learner's progress (its weights
# version) is what lets it go on. Each poll is a message, so not much more often than updates.
THROTTLE_POLL_S = 0.05
# How long one call waits behind the learner before it returns with what it has, so that the
# driver hears from every actor about once a second.
THROTTLE_WAIT_S = 1.0


class ActorWorker:
    """One actor's loop around an ``Actor`` (see module docstring).

    Args:
        actor: the ``Actor`` (or ``PipelinedActor``).
        cfg: the actors' config.
        index: this actor's number (where its pushes start).
        replay: the shards.
        weights: the weight store.
        throttle: the ``actors.min_replay_ratio`` gate.
        max_wait_s: seconds one call may wait behind the learner (0 in one process, where the
            learner cannot move while the actor waits).
        sleep: how to wait between polls.
    """

    def __init__(
        self,
        actor: ActorComponent,
        *,
        cfg: ActorsConfig,
        index: int,
        replay: ReplayPort,
        weights: WeightStore,
        throttle: ActorThrottle,
        max_wait_s: float = THROTTLE_WAIT_S,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.actor = actor
        self._cfg = cfg
        self._replay = replay
        self._weights = weights
        self._throttle = throttle
        self._max_wait_s = max_wait_s
        self._sleep = sleep
        self._next_shard = index % replay.num_shards
        self._pushes = 0
        self._sync_steps = max(1, cfg.sync_every // cfg.envs_per_actor)
        self._since_sync = self._sync_steps
        self._pending: list[tuple[Any, int]] = []
        self.pushed = 0
        self.lost = 0
        self._weights_at: float | None = None  # when the current weights came
        self._timer = PhaseTimer(ACTOR_PHASES)

    def _sync(self, phase: str = "weight_sync") -> None:
        """Pull newer weights if there are; the time counts toward ``phase``."""
        with self._timer.phase(phase):
            weights, version = self._weights.pull_if_newer(self.actor.weights_version)
            if weights is not None:
                self.actor.set_weights(weights, version)
                self._weights_at = time.monotonic()
        self._since_sync = 0

    def _ahead(self) -> bool:
        return self._throttle.ahead(self.actor.weights_version, self.pushed - self.lost)

    def _push(self, batches: list) -> None:
        for batch in batches:
            self._pushes += 1
            shard = self._next_shard
            if self._pushes % PUSHES_PER_SHARD == 0:
                self._next_shard = (self._next_shard + 1) % self._replay.num_shards
            self._pending.append((self._replay.add(shard, batch), len(batch)))
            self.pushed += len(batch)
        excess = len(self._pending) - self._cfg.max_pending_pushes
        if excess > 0:
            self.settle(excess)

    def settle(self, num: int) -> None:
        """Wait for ``num`` pushes; count the transitions of those whose shard died as lost."""
        tickets = [ticket for ticket, _ in self._pending]
        done = set(self._replay.wait(tickets, num_returns=num, timeout=None))
        still = []
        for ticket, n in self._pending:
            if ticket not in done:
                still.append((ticket, n))
                continue
            try:
                self._replay.result(ticket)
            except ShardDown:  # the shard died with the batch in flight
                self.lost += n
        self._pending = still

    def run(self) -> ActorReport:
        """Act for ``actors.steps_per_call`` vector steps (fewer when it has to wait)."""
        report = ActorReport()
        pushed_before, lost_before = self.pushed, self.lost
        self._timer.reset()
        done, waited = 0, 0.0
        while done < self._cfg.steps_per_call:
            if self._since_sync >= self._sync_steps:
                self._sync()
            while waited < self._max_wait_s and self._ahead():
                with self._timer.phase("throttled"):
                    self._sleep(THROTTLE_POLL_S)
                waited += THROTTLE_POLL_S
                self._sync(phase="throttled")
            if waited >= self._max_wait_s and self._ahead():
                if not waited:
                    self._sync(phase="throttled")  # it has not polled in this call yet
                if self._ahead() and not self._throttle.stalled():
                    break  # still ahead: return, so the driver hears from it
            chunk = min(self._sync_steps - self._since_sync, self._cfg.steps_per_call - done)
            with self._timer.phase("acting"):
                batches, _ = self.actor.run_steps(chunk, report)
            with self._timer.phase("pushing"):
                self._push(batches)
            done += chunk
            self._since_sync += chunk
        report.weights_version = self.actor.weights_version
        report.pid = os.getpid()
        report.pushed = self.pushed - pushed_before
        report.lost = self.lost - lost_before
        report.waited_s = waited
        report.epsilon = float(self.actor.epsilon)
        report.seconds = dict(self._timer.seconds)
        if self._weights_at is not None:
            report.weights_age_s = time.monotonic() - self._weights_at
        report.ended_at = time.time()
        return report
