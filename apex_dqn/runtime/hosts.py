"""Ray hosts of the plain components: each wraps one plain class and adds its Ray traffic.

A host owns one component (Actor, Learner, Evaluator) and talks to the parameter server and the
replay shards through Ray handles; the plain class underneath stays unaware of Ray. The classes
here are plain too; ``ray_runtime`` makes them remote with their resources in one place. Torch is
imported inside the hosts' constructors, so the driver, which only holds handles, never loads it.
"""

from __future__ import annotations

import contextlib
import os
import socket
import sys
import time
import warnings
from collections import deque
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import ray

from apex_dqn import seeding
from apex_dqn.metrics import (
    IS_WEIGHT_MEAN,
    IS_WEIGHT_MIN,
    PRIORITY_MAX,
    PRIORITY_MEAN,
    learner_metric_dict,
)
from apex_dqn.replay import sharded
from apex_dqn.types import ReplayStats, Sample

PUSHES_PER_SHARD = 8
# A throttled actor polls the parameter server this often: the learner's progress (its weights
# version) is what lets it go on. Each poll is a Ray call, so not much more often than updates come.
THROTTLE_POLL_S = 0.05
# A throttled actor whose learner has published nothing new for this long steps one chunk
# anyway: a liveness guarantee for states the ratio accounting does not foresee. A
# training learner publishes every few seconds at most, so this never fires in a healthy run.
THROTTLE_STALL_S = 30.0
# How long a learner of a group waits in a collective for the others before failing. Rounds
# normally follow each other within milliseconds; a checkpoint or restore on one learner holds
# the others for seconds. A dead learner is handled by the driver long before this.
GROUP_TIMEOUT_S = 600.0


def _limit_torch_threads(num_cpus: float, *, only_if_loaded: bool = False) -> None:
    """Give torch max(1, int(num_cpus)) threads; with ``only_if_loaded``, only when this
    process already uses torch (MLP actors and the evaluator act with numpy, never load it)."""
    if only_if_loaded and "torch" not in sys.modules:
        return
    import torch

    torch.set_num_threads(max(1, int(num_cpus)))


def _node_id() -> str:
    return ray.get_runtime_context().get_node_id()


def _was_restarted() -> bool:
    """Whether Ray restarted this actor (a fault), rather than creating it."""
    with warnings.catch_warnings():  # Ray's property warns about an API it uses itself
        warnings.simplefilter("ignore")
        return bool(ray.get_runtime_context().was_current_actor_reconstructed)


def _lower_priority(niceness: int) -> None:
    """Raise this process's niceness so a learner sharing the machine wins the CPU."""
    if niceness > 0 and hasattr(os, "nice"):
        os.nice(niceness)


@dataclass(frozen=True)
class Peers:
    """Names of the named Ray actors a host talks to; hosts look them up with ``connect``.

    Names rather than handles: an actor handle among a restartable actor's constructor
    arguments makes Ray hold the arguments in the object store, and a restart could then fail.
    """

    parameter_server: str
    shards: tuple[str, ...]
    namespace: str

    def connect(self) -> tuple[Any, list]:
        """(parameter server handle, shard handles)."""
        ps = ray.get_actor(self.parameter_server, namespace=self.namespace)
        return ps, [ray.get_actor(n, namespace=self.namespace) for n in self.shards]


def pull_weights(ps: Any, version: int) -> tuple[dict | None, int]:
    """Ask the parameter server for weights newer than ``version``; fetch them if there are."""
    ref_box, latest = ray.get(ps.get_if_newer.remote(version))
    if ref_box is None:
        return None, version
    try:
        return ray.get(ref_box[0]), latest
    except ray.exceptions.ObjectLostError:
        # The learner that put them died; its restored successor publishes again shortly.
        return None, version


class ActorHost:
    """Runs an ``Actor``: pulls weights when due, pushes full batches to replay shards.

    Pushes go round-robin over the shards, starting at the actor's index; at most
    ``max_pending_pushes`` are in flight before the actor waits for a shard (backpressure). With
    ``actors.min_replay_ratio`` > 0 the actor also pauses while it is further ahead of the
    learner than that ratio allows (the learner's progress is the published weights version).
    """

    def __init__(
        self,
        *,
        actor_kwargs: dict,
        peers: Peers,
        num_cpus: float,
        batch_size: int,
        min_size_to_learn: int,
        throttle_stall_s: float = THROTTLE_STALL_S,
    ) -> None:
        from apex_dqn.actor import make_actor

        cfg = actor_kwargs["actors"]
        _lower_priority(cfg.nice)
        self.actor = make_actor(**actor_kwargs)
        _limit_torch_threads(num_cpus, only_if_loaded=True)
        self._cfg = cfg
        self._ps, self._shards = peers.connect()
        self._next_shard = actor_kwargs["actor_index"] % len(self._shards)
        self._pushes = 0
        self._sync_steps = max(1, cfg.sync_every // cfg.envs_per_actor)
        self._batch_size = batch_size
        self._min_size = min_size_to_learn
        self._pending: list = []
        self._since_sync = self._sync_steps
        self.pushed = 0
        self.lost = 0
        self._restarted = _was_restarted()
        self._throttle_base = 0.0
        self._gate_version = self.actor.weights_version  # the version the gate last saw
        self._gate_moved_at = time.monotonic()  # when that version last changed
        self._stall_s = throttle_stall_s
        self._weights_at: float | None = None  # monotonic time the current weights came
        self._seconds = dict.fromkeys(("acting", "pushing", "weight_sync", "throttled"), 0.0)

    def _sync(self, phase: str = "weight_sync") -> None:
        """Pull newer weights if any; the time counts toward ``phase``."""
        start = time.monotonic()
        weights, version = pull_weights(self._ps, self.actor.weights_version)
        if weights is not None:
            self.actor.set_weights(weights, version)
            self._weights_at = time.monotonic()
        self._since_sync = 0
        self._seconds[phase] += time.monotonic() - start

    def _ahead_of_learner(self) -> bool:
        """Whether this actor's share of inserted transitions exceeds what the ratio allows."""
        ratio = self._cfg.min_replay_ratio
        if ratio <= 0:
            return False
        if self._restarted and self.actor.weights_version < 0:
            return False  # a restarted actor without weights yet: the next pull calibrates
        version = self.actor.weights_version
        learner_samples = max(0, version) * self._batch_size
        allowed = (self._min_size + learner_samples / ratio) / self._cfg.num_actors
        delivered = self.pushed - self.lost  # lost pushes never reached the learner
        if self._restarted or version < self._gate_version:
            # A restarted actor's own count starts at 0, and a learner restored from an older
            # checkpoint publishes an older version again: count this actor as caught up, not
            # as owed (or owing) the difference, or actor and learner could wait on each other.
            self._throttle_base = allowed - delivered
            self._restarted = False
        if version != self._gate_version:
            self._gate_version, self._gate_moved_at = version, time.monotonic()
        return self._throttle_base + delivered >= allowed

    def _push(self, batches: list) -> None:
        for batch in batches:
            # Several pushes in a row go to one shard, so that a frame replay finds the frames
            # a push shares with the previous one (at most 1 push in PUSHES_PER_SHARD cannot).
            shard = self._shards[self._next_shard]
            self._pushes += 1
            if self._pushes % PUSHES_PER_SHARD == 0:
                self._next_shard = (self._next_shard + 1) % len(self._shards)
            self._pending.append((shard.add.remote(batch), len(batch)))
            self.pushed += len(batch)
        if len(self._pending) > self._cfg.max_pending_pushes:
            self._settle(len(self._pending) - self._cfg.max_pending_pushes)

    def _settle(self, num: int) -> None:
        """Wait for ``num`` pushes; count the transitions of those whose shard died as lost."""
        refs = [ref for ref, _ in self._pending]
        ready, _ = ray.wait(refs, num_returns=num)
        done = set(ready)
        still = []
        for ref, n in self._pending:
            if ref not in done:
                still.append((ref, n))
                continue
            try:
                ray.get(ref)
            except ray.exceptions.RayError:  # the shard died with the batch in flight
                self.lost += n
        self._pending = still

    def node_id(self) -> str:
        """The Ray node this actor runs on (placement tests)."""
        return _node_id()

    def run(self) -> dict:
        """Act for ``actors.steps_per_call`` vector steps; return what happened."""
        totals: dict[str, Any] = {
            "env_steps": 0,
            "episode_returns": [],
            "episode_lengths": [],
            "transitions": 0,
            "env_errors": 0,
        }
        pushed_before, lost_before = self.pushed, self.lost
        self._seconds = dict.fromkeys(self._seconds, 0.0)
        done, waited = 0, 0.0
        while done < self._cfg.steps_per_call:
            if self._since_sync >= self._sync_steps:
                self._sync()
            while self._ahead_of_learner() and waited < 1.0:
                start = time.monotonic()
                time.sleep(THROTTLE_POLL_S)
                waited += THROTTLE_POLL_S
                self._seconds["throttled"] += time.monotonic() - start
                self._sync(phase="throttled")
            if waited >= 1.0 and self._ahead_of_learner():
                if time.monotonic() - self._gate_moved_at < self._stall_s:
                    break  # still ahead: return, so the driver hears from it every second
                self._gate_moved_at = time.monotonic()  # stalled: one chunk anyway, see above
            chunk = min(self._sync_steps - self._since_sync, self._cfg.steps_per_call - done)
            start = time.monotonic()
            batches, report = self.actor.run_steps(chunk)
            acted = time.monotonic()
            self._push(batches)
            self._seconds["acting"] += acted - start
            self._seconds["pushing"] += time.monotonic() - acted
            done += chunk
            self._since_sync += chunk
            totals["env_steps"] += report.env_steps
            totals["episode_returns"] += report.episode_returns
            totals["episode_lengths"] += report.episode_lengths
            totals["transitions"] += report.transitions
            totals["env_errors"] += report.env_errors
        totals["weights_version"] = self.actor.weights_version
        totals["pid"] = os.getpid()
        totals["pushed"] = self.pushed - pushed_before
        totals["lost"] = self.lost - lost_before
        totals["waited_s"] = waited
        totals["epsilon"] = self.actor.epsilon
        totals.update({f"{phase}_s": sec for phase, sec in self._seconds.items()})
        if self._weights_at is not None:
            totals["weights_age_s"] = time.monotonic() - self._weights_at
        return totals


class ReplayShardHost:
    """Hosts one ``PrioritizedReplay`` (or its frame variant) and serves several batches per
    call.

    Each Ray call costs far more than a replay operation on small transitions (hundreds of
    microseconds against about a hundred), so the learner asks for ``num_batches`` batches at once
    and returns their priorities in one call.
    """

    def __init__(
        self,
        *,
        replay_kwargs: dict,
        snapshot_path: str | None = None,
        snapshot_every_s: float = 0.0,
        load_snapshot: bool = False,
    ) -> None:
        from apex_dqn.replay import make_replay

        self.replay = make_replay(**replay_kwargs)
        self._snapshot_path = snapshot_path
        self._snapshot_every_s = snapshot_every_s
        self._last_snapshot = time.monotonic()
        self.restored = 0
        # A restarted shard (or a resumed run) reloads its last snapshot; a fresh one never
        # does, so that a reused output directory cannot leak old transitions into a new run.
        restarted = _was_restarted()
        if snapshot_path and (load_snapshot or restarted) and os.path.isfile(snapshot_path):
            from apex_dqn.replay.snapshot import load_snapshot as read

            self.replay.load_state_dict(read(snapshot_path))
            self.restored = len(self.replay)

    def add(self, batch: Any) -> int:
        """Insert a pushed batch; return the shard's size. Snapshots when one is due."""
        self.replay.add(batch)
        if (
            self._snapshot_path
            and self._snapshot_every_s > 0
            and time.monotonic() - self._last_snapshot >= self._snapshot_every_s
        ):
            self.snapshot()
        return len(self.replay)

    def snapshot(self) -> str | None:
        """Write the shard's state to its snapshot file now; return the path (None: off)."""
        if not self._snapshot_path:
            return None
        from apex_dqn.replay.snapshot import save_snapshot

        save_snapshot(self._snapshot_path, self.replay.state_dict())
        self._last_snapshot = time.monotonic()
        return self._snapshot_path

    def sample_many(self, batch_size: int, beta: float, num_batches: int) -> list[Sample]:
        """``num_batches`` independent prioritized samples of ``batch_size``."""
        return [self.replay.sample(batch_size, beta) for _ in range(num_batches)]

    def update_priorities(self, ids_B: np.ndarray, priorities_B: np.ndarray) -> int:
        """Apply new priorities (stale ids are ignored); return how many were applied."""
        return self.replay.update_priorities(ids_B, priorities_B)

    def stats(self) -> ReplayStats:
        """The shard's statistics."""
        return self.replay.stats()

    def restored_size(self) -> int:
        """Transitions this shard reloaded from its snapshot when it started."""
        return self.restored

    def pid(self) -> int:
        """The shard's process id (the soak benchmark reads its memory)."""
        return os.getpid()

    def node_id(self) -> str:
        """The Ray node this shard runs on (placement tests)."""
        return _node_id()


@dataclass
class _Request:
    """A sample request whose batches are being learned from; its priorities go back in one
    call when the last batch is done."""

    shard: int
    left: int
    ids: list[np.ndarray] = field(default_factory=list)
    priorities: list[np.ndarray] = field(default_factory=list)


@dataclass
class _StagedItem:
    request: _Request
    ids_B: np.ndarray
    future: Future
    weights_B: np.ndarray


class LearnerHost:
    """Runs a ``Learner`` against the replay shards, with sample requests kept in flight.

    With several shards a batch comes from one shard chosen with probability proportional to its
    priority sum, so that the marginal sampling probability of item i is p_i / sum over all
    shards (exact prioritized replay across shards); the shard's importance weights, normalized
    within the batch, are then those of the union.

    With ``learner.num_learners`` = K > 1 this is learner ``rank`` of K: each samples its own
    batches, sends their priorities to the shards they came from, and steps in collective
    rounds with the others (``Learner.group_step``) after ``join_group``. Rank 0 publishes the
    weights and is the one the driver checkpoints.
    """

    def __init__(
        self,
        *,
        learner_kwargs: dict,
        peers: Peers,
        seed: int,
        rank: int = 0,
    ) -> None:
        _limit_torch_threads(learner_kwargs["learner"].num_cpus)
        from apex_dqn.learner import Learner

        # Samples arrive as read-only zero-copy arrays; the learner never writes to them.
        warnings.filterwarnings("ignore", message="The given NumPy array is not writable")

        self.learner = Learner(**learner_kwargs)
        self.cfg = learner_kwargs["learner"]
        self.rank = rank
        self.num_learners = self.cfg.num_learners
        self._replay_cfg = learner_kwargs["replay"]
        self._ps, self._shards = peers.connect()
        # Each learner of a group draws its own batches.
        self._seed = seed
        self._rng = np.random.default_rng(seeding.derive(seed, seeding.LEARNER, rank))
        self._stats: list[ReplayStats | None] = [None] * len(self._shards)
        self._inflight: dict[Any, int] = {}
        self._last_metrics: dict[str, float] = {}
        self._down: set[int] = set()
        self.shard_failures = 0
        self.shard_restarts = 0
        self._last_added: list[int | None] = [None] * len(self._shards)
        self._added_offset = [0] * len(self._shards)
        self._instance: list[int | None] = [None] * len(self._shards)
        # Replay-ratio accounting of this learner process: a restored learner counts draws and
        # inserts from its restore on, with min_size_to_learn of slack to start from.
        self._base_steps = 0
        self._base_added = 0
        self._grace = 0
        self._last_refresh = time.monotonic()
        # Batches received and handed to the device, oldest first; on CUDA a helper thread
        # stages them (pinned copy + host-to-device on a side stream) while updates run.
        self._staged: deque[_StagedItem] = deque()
        # Two threads: host copies of consecutive batches overlap (numpy releases the GIL).
        self._stager = ThreadPoolExecutor(2, "stage") if self.learner.stages_async else None
        self.published_version = -1
        self.batches_learned = 0  # by this learner (in a group: its share of the updates)
        # Cumulative seconds per phase (metrics: timers/learner_*).
        self._seconds = dict.fromkeys(("sampling", "learning", "priorities", "publishing"), 0.0)
        # A restarted learner waits for the driver's ``restore`` (its latest checkpoint) rather
        # than announcing freshly initialised weights to the actors.
        if not _was_restarted():
            self.publish()

    def device(self) -> str:
        """The torch device the learner runs on."""
        return str(self.learner.device)

    def group_address(self) -> tuple[str, int]:
        """This node's address and a free port there: rank 0's answer is where the group of
        learners meets (``join_group``)."""
        address = ray.util.get_node_ip_address()
        with socket.socket(socket.AF_INET6 if ":" in address else socket.AF_INET) as sock:
            sock.bind(("", 0))
            port = sock.getsockname()[1]
        return address, port

    def join_group(self, address: str, port: int) -> int:
        """Join the torch.distributed group of all learners at rank 0's ``address:port``
        (every learner calls this at once; it returns when all have joined), then take rank
        0's networks. Returns this learner's process id."""
        from datetime import timedelta

        import torch.distributed as dist

        backend = self.cfg.dist_backend
        if backend == "auto":
            backend = "nccl" if self.learner.device.type == "cuda" else "gloo"
        host = f"[{address}]" if ":" in address else address
        device_id = None
        if backend == "nccl":  # NCCL binds each rank to its GPU (Ray makes it cuda:0 here)
            import torch

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
        self.learner.set_process_group(dist.group.WORLD)
        self.learner.broadcast_from(0)
        return os.getpid()

    def pid(self) -> int:
        """The learner's process id (the driver tells a dead group member by it)."""
        return os.getpid()

    def weights_digest(self) -> str:
        """A digest of the online weights (tests compare the learners of a group)."""
        from apex_dqn.networks import weights_digest

        return weights_digest(self.learner.get_weights())

    def node_id(self) -> str:
        """The Ray node this learner runs on (placement tests)."""
        return _node_id()

    def publish(self, force: bool = False) -> int:
        """Put the online weights into the object store once and announce them; return version.

        ``force`` replaces the parameter server's weights even when its version is newer (after
        a restore from a checkpoint older than what was last published).
        """
        version = self.learner.learner_steps
        if self.rank != 0:
            return version  # the group's weights are rank 0's to publish
        start = time.monotonic()
        ref = ray.put(self.learner.get_weights())
        self._ps.set_weights.remote([ref], version, force)
        self.published_version = version
        self._seconds["publishing"] += time.monotonic() - start
        return version

    def _shard_failed(self, shard: int) -> None:
        """A shard call failed (the shard died): leave it out until it answers again."""
        if shard not in self._down:
            self.shard_failures += 1
        self._down.add(shard)
        self._stats[shard] = None

    def _shard_answered(self, shard: int, stats: ReplayStats) -> None:
        """Record a shard's statistics; a new replay instance id means the shard was restarted
        (it came back empty, or from a snapshot), whether or not one of our calls failed."""
        self._down.discard(shard)
        last = self._last_added[shard]
        if self._instance[shard] not in (None, stats.instance):
            self.shard_restarts += 1
            self._added_offset[shard] += last or 0  # inserts of its earlier life still count
            last = None
        elif last is not None and stats.added < last:
            return  # an older report arriving after a newer one: keep the newer
        self._instance[shard] = stats.instance
        self._last_added[shard] = stats.added
        self._stats[shard] = stats

    def _total_added(self) -> int:
        """Transitions inserted into all shards, across shard restarts (last known counts for
        shards that are down)."""
        return sum(
            offset + (last or 0)
            for offset, last in zip(self._added_offset, self._last_added, strict=True)
        )

    def _refresh_stats(self) -> None:
        self._last_refresh = time.monotonic()
        refs = [s.stats.remote() for s in self._shards]
        for shard, ref in enumerate(refs):
            try:
                self._shard_answered(shard, ray.get(ref, timeout=5.0))
            except (ray.exceptions.RayError, ray.exceptions.GetTimeoutError):
                self._shard_failed(shard)

    def _request(self) -> bool:
        """Submit one sample request if the replay is ready and the ratio allows; True if sent."""
        if sharded.total_size(self._stats) < self._replay_cfg.min_size_to_learn:
            return False
        k = self.cfg.batches_per_request
        steps = (
            self.learner.learner_steps
            - self._base_steps
            + len(self._staged)
            + k * (len(self._inflight) + 1)
        )
        if not sharded.replay_ratio_allows(
            samples_drawn=steps * self.cfg.batch_size * self.num_learners,
            max_ratio=self.cfg.max_replay_ratio,
            transitions_added=self._total_added() - self._base_added + self._grace,
        ):
            return False
        shard = sharded.pick_shard(self._stats, self.cfg.batch_size, self._rng)
        if shard is None:
            return False
        ref = self._shards[shard].sample_many.remote(self.cfg.batch_size, self.learner.beta(), k)
        self._inflight[ref] = shard
        return True

    def _receive(self, ref: Any) -> None:
        """Take a finished sample request and stage its batches."""
        shard = self._inflight.pop(ref)
        try:
            samples: list[Sample] = ray.get(ref)
        except ray.exceptions.RayError:
            self._shard_failed(shard)
            return
        for sample in samples:
            self._shard_answered(shard, sample.stats)
        request = _Request(shard=shard, left=len(samples))
        for sample in samples:
            weights_B = sample.weights_B
            future: Future = Future()
            if self._stager is not None:
                future = self._stager.submit(self.learner.stage, sample.batch, weights_B)
            else:
                future.set_result(self.learner.stage(sample.batch, weights_B))
            self._staged.append(_StagedItem(request, sample.ids_B, future, weights_B))

    def _step_one(self) -> None:
        """One update on the oldest staged batch (see ``_learned``)."""
        item = self._staged.popleft()
        start = time.monotonic()
        metrics, priorities_B = self.learner.step_staged(item.future.result())
        self._seconds["learning"] += time.monotonic() - start
        self._learned(item, metrics, priorities_B)

    def _learned(self, item: _StagedItem, metrics: Any, priorities_B: np.ndarray) -> None:
        """After an update on ``item``: when it is its request's last batch, one
        priority-update call for the request's batches; publish when due; keep the metrics."""
        learned = time.monotonic()
        self.batches_learned += 1
        request = item.request
        request.ids.append(item.ids_B)
        request.priorities.append(priorities_B)
        request.left -= 1
        if request.left == 0:
            self._shards[request.shard].update_priorities.remote(
                np.concatenate(request.ids), np.concatenate(request.priorities)
            )
        self._seconds["priorities"] += time.monotonic() - learned
        self._publish_if_due()
        self._last_metrics = {
            **learner_metric_dict(metrics),
            PRIORITY_MEAN: float(priorities_B.mean()),
            PRIORITY_MAX: float(priorities_B.max()),
            IS_WEIGHT_MEAN: float(item.weights_B.mean()),
            IS_WEIGHT_MIN: float(item.weights_B.min()),
        }

    def _publish_if_due(self) -> None:
        if self.learner.learner_steps % self.cfg.publish_every == 0:
            self.publish()

    def run_for(self, seconds: float) -> dict:
        """Train for about ``seconds``; return counters, replay totals and the latest metrics.

        In a group every learner must be called together: a call ends at the first round after
        any learner's ``seconds`` have passed, on all of them at the same update.
        """
        if self.num_learners > 1:
            return self._run_group(seconds)
        deadline = time.monotonic() + seconds
        start_steps = self.learner.learner_steps
        k = self.cfg.batches_per_request
        while time.monotonic() < deadline:
            while len(self._inflight) < self.cfg.prefetch and self._request():
                pass
            if self._staged:
                # Stage the next request's batches while this one's are stepped through.
                if self._inflight and len(self._staged) <= k:
                    ready, _ = ray.wait(list(self._inflight), num_returns=1, timeout=0)
                    if ready:
                        self._receive(ready[0])
                self._step_one()
                continue
            if not self._inflight:
                self._refresh_stats()
                if not self._request():
                    time.sleep(0.005)
                continue
            timeout = max(0.0, deadline - time.monotonic())
            waiting = time.monotonic()
            ready, _ = ray.wait(list(self._inflight), num_returns=1, timeout=timeout)
            self._seconds["sampling"] += time.monotonic() - waiting
            if not ready:
                break
            self._receive(ready[0])
        # Statistics also arrive with every sample, but a shard that is not sampled (one that
        # came back empty, say) would keep reporting its old size: ask all once a second.
        if self._down or time.monotonic() - self._last_refresh >= 1.0:
            self._refresh_stats()
        return self._report(self.learner.learner_steps - start_steps)

    def _run_group(self, seconds: float) -> dict:
        """``run_for`` of a learner in a group: every iteration is one collective round, to
        which this learner brings its oldest staged batch if it has one (else nothing)."""
        deadline = time.monotonic() + seconds
        start_steps = self.learner.learner_steps
        k = self.cfg.batches_per_request
        while True:
            while len(self._inflight) < self.cfg.prefetch and self._request():
                pass
            if self._inflight and len(self._staged) <= k:
                # Short waits only: the other learners wait in the round for this one.
                waiting = time.monotonic()
                timeout = 0.0 if self._staged else 0.002
                ready, _ = ray.wait(list(self._inflight), num_returns=1, timeout=timeout)
                self._seconds["sampling"] += time.monotonic() - waiting
                if ready:
                    self._receive(ready[0])
            elif not self._inflight and not self._staged:
                self._refresh_stats()
                if not self._request():
                    time.sleep(0.005)
            item = self._staged.popleft() if self._staged else None
            start = time.monotonic()
            staged = item.future.result() if item is not None else None
            stepped_before = self.learner.learner_steps
            metrics, priorities_B, stop = self.learner.group_step(
                staged, stop=time.monotonic() >= deadline
            )
            self._seconds["learning"] += time.monotonic() - start
            if item is not None:
                assert priorities_B is not None  # a learner that brought a batch gets them
                self._learned(item, metrics, priorities_B)
            elif self.learner.learner_steps != stepped_before:
                self._publish_if_due()
            if stop:
                break
        if self._down or time.monotonic() - self._last_refresh >= 1.0:
            self._refresh_stats()
        return self._report(self.learner.learner_steps - start_steps)

    def status(self) -> dict:
        """Counters and replay totals now, without training (what ``run_for`` returns)."""
        return self._report(0)

    def _report(self, updates: int) -> dict:
        return {
            "updates": updates,
            "batches_learned": self.batches_learned,
            "learner_steps": self.learner.learner_steps,
            "weights_version": self.published_version,
            "skipped_updates": self.learner.skipped_updates,
            "replay": {
                **sharded.totals(self._stats),
                "added": self._total_added(),
                "sampled": self.learner.learner_steps * self.cfg.batch_size * self.num_learners,
            },
            "metrics": self._last_metrics,
            "shard_failures": self.shard_failures,
            "shard_restarts": self.shard_restarts,
            "shards_down": len(self._down),
            "timers": dict(self._seconds),
        }

    def checkpoint_bytes(self, extra: dict) -> bytes:
        """The learner's state, RNG states and ``extra`` as checkpoint bytes (the driver writes
        them, so the run directory need not be on the learner's node)."""
        import torch

        from apex_dqn.checkpoint import state_to_bytes

        rng = {"torch": torch.get_rng_state(), "numpy": self._rng.bit_generator.state}
        # The driver's counters may trail the learner by one call; the learner's own count is
        # the one that matches the saved networks.
        steps = self.learner.learner_steps
        extra = {**extra, "learner_steps": steps}
        if "tracker" in extra:
            extra["tracker"] = {**extra["tracker"], "learner_steps": steps}
        return state_to_bytes({**extra, "learner": self.learner.state_dict(), "rng": rng})

    def restore(self, data: bytes | None) -> dict:
        """Load checkpoint bytes (None: keep the fresh network) and publish the weights.

        Returns the restored learner steps and a digest of the online weights, which a resumed
        run records so that a test can compare them with the checkpoint's.
        """
        import torch

        from apex_dqn.checkpoint import state_from_bytes
        from apex_dqn.networks import weights_digest

        if data is not None:
            state = state_from_bytes(data, map_location="cpu")
            self.learner.load_state_dict(state["learner"])
            rng = state.get("rng", {})
            if "torch" in rng:
                torch.set_rng_state(rng["torch"])
            if "numpy" in rng and self.rank == 0:
                self._rng.bit_generator.state = rng["numpy"]
            elif self.rank > 0:  # rank 0's saved sampler would repeat rank 0's draws
                steps = self.learner.learner_steps
                self._rng = np.random.default_rng(
                    seeding.derive(self._seed, seeding.LEARNER, self.rank, steps)
                )
            self._refresh_stats()
            self._base_steps = self.learner.learner_steps
            self._base_added = self._total_added()
            self._grace = self._replay_cfg.min_size_to_learn
        version = self.publish(force=True)
        return {
            "learner_steps": self.learner.learner_steps,
            "weights_version": version,
            "weights_digest": weights_digest(self.learner.get_weights()),
        }


class EvaluatorHost:
    """Runs an ``Evaluator`` on the latest published weights, at most once per ``interval_s``.

    An environment error abandons that evaluation (reported as ``env_errors``) and rebuilds the
    evaluator's environments; ``max_env_errors`` failed evaluations in a row raise
    ``EnvFailure``, which stops the run.
    """

    def __init__(
        self,
        *,
        evaluator_kwargs: dict,
        peers: Peers,
        interval_s: float,
        num_cpus: float,
        max_env_errors: int = 10,
    ) -> None:
        from apex_dqn.evaluate import Evaluator

        self._kwargs = evaluator_kwargs
        self.evaluator = Evaluator(**evaluator_kwargs)
        _limit_torch_threads(num_cpus, only_if_loaded=True)
        self._ps, _ = peers.connect()
        self._interval_s = interval_s
        self._max_env_errors = max_env_errors
        self._errors_in_a_row = 0
        self._version = -1
        self._last_start = -float("inf")

    def evaluate_latest(self, confirm: bool = True) -> dict | None:
        """Evaluate weights newer than the last evaluated ones; None if there are none yet.
        ``confirm``: repeat an evaluation that reaches the target (``Evaluator``)."""
        from dataclasses import asdict

        from apex_dqn.actor import EnvFailure
        from apex_dqn.evaluate import Evaluator

        wait = self._last_start + self._interval_s - time.monotonic()
        if wait > 0:
            time.sleep(wait)
        weights, version = pull_weights(self._ps, self._version)
        if weights is None:
            time.sleep(0.02)
            return None
        self._last_start = time.monotonic()
        self._version = version
        try:
            result = asdict(self.evaluator.evaluate(weights, version, confirm=confirm))
        except Exception as exc:  # user environment code
            self._errors_in_a_row += 1
            if self._errors_in_a_row >= self._max_env_errors:
                raise EnvFailure(
                    f"env.id={self._kwargs['env'].id!r} raised in {self._errors_in_a_row} "
                    f"evaluations in a row (actors.max_env_errors={self._max_env_errors}); "
                    f"last error: {type(exc).__name__}: {exc}"
                ) from exc
            with contextlib.suppress(Exception):
                self.evaluator.close()
            # The new evaluator goes on with the next episodes' seeds, not the first ones again.
            done = self.evaluator.evaluations
            self.evaluator = Evaluator(**self._kwargs, evaluations_done=done)
            return {"env_errors": 1}
        self._errors_in_a_row = 0
        return result
