"""The roles bound to Ray: ports over Ray handles, and one host class per role.

A host is its role (``apex_dqn.roles``) with Ray ports and the little only Ray can tell: whether
Ray restarted this process, the node it runs on, the address a learner group meets at.
``ray_runtime`` makes the hosts remote with their resources in one place. Torch is imported
inside the roles' constructors, so the driver, which only holds handles, never loads it.
"""

from __future__ import annotations

import os
import socket
import sys
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import ray

from apex_dqn.core.rules import ActorThrottle
from apex_dqn.roles.actor_worker import ActorWorker
from apex_dqn.roles.build import ActorSpec, EvaluatorSpec, LearnerSpec, ShardSpec
from apex_dqn.roles.evaluator_worker import EvaluatorWorker
from apex_dqn.roles.learner_worker import LearnerWorker
from apex_dqn.roles.ports import ShardDown
from apex_dqn.roles.shard_worker import ShardWorker
from apex_dqn.runtime.shares import actor_niceness, usable_cpus

# A throttled actor whose learner has published nothing new for this long steps one chunk
# anyway (``ActorThrottle``). A training learner publishes every few seconds at most, so this
# never fires in a healthy run.
THROTTLE_STALL_S = 30.0


def _limit_torch_threads(num_cpus: float, *, only_if_loaded: bool = False) -> None:
    """Give torch max(1, int(num_cpus)) threads; with ``only_if_loaded``, only when this
    process already uses torch (MLP actors and the evaluator act with numpy, never load it)."""
    if only_if_loaded and "torch" not in sys.modules:
        return
    import torch

    torch.set_num_threads(max(1, int(num_cpus)))


def _learner_threads(spec: LearnerSpec) -> None:
    """Give this learner process its ``learner.num_threads`` torch threads (auto resolved for
    its device and torso on this node)."""
    import torch

    from apex_dqn.algo.torch_compat import resolve_device, resolve_num_threads

    cfg = spec.learner
    device = resolve_device(cfg.device)
    torso = spec.network.torso
    torch.set_num_threads(
        resolve_num_threads(cfg.num_threads, cfg.num_cpus, device, torso, usable_cpus())
    )


def _node_id() -> str:
    return ray.get_runtime_context().get_node_id()


def _was_restarted() -> bool:
    """Whether Ray restarted this actor (a fault), rather than creating it."""
    with warnings.catch_warnings():  # Ray's property warns about an API it uses itself
        warnings.simplefilter("ignore")
        return bool(ray.get_runtime_context().was_current_actor_reconstructed)


def _warn_if_niced() -> None:
    """Say so when this learner runs niced (a cluster started without RAY_worker_niceness=0):
    actors on its node, which can only add to the same niceness, then take its CPU."""
    niceness = os.nice(0) if hasattr(os, "nice") else 0
    if niceness > 0:
        print(
            f"apex-dqn: the learner runs at niceness {niceness} (Ray's worker_niceness), so "
            "actors on its node take CPU from it almost as equals: start each node's Ray with "
            "RAY_worker_niceness=0 (as the launch files do)",
            file=sys.stderr,
        )


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

    def connect(self) -> tuple[RayWeightStore, RayReplayPort]:
        """The weight store and the replay port over the named actors."""
        ps = ray.get_actor(self.parameter_server, namespace=self.namespace)
        shards = [ray.get_actor(n, namespace=self.namespace) for n in self.shards]
        return RayWeightStore(ps), RayReplayPort(shards)


class RayReplayPort:
    """``ReplayPort`` over shard actor handles: tickets are object refs."""

    def __init__(self, shards: Sequence[Any]) -> None:
        self._shards = list(shards)

    @property
    def num_shards(self) -> int:
        return len(self._shards)

    def add(self, shard: int, batch: Any) -> Any:
        return self._shards[shard].add.remote(batch)

    def sample_many(self, shard: int, batch_size: int, beta: float, num_batches: int) -> Any:
        return self._shards[shard].sample_many.remote(batch_size, beta, num_batches)

    def update_priorities(self, shard: int, ids_B: np.ndarray, priorities_B: np.ndarray) -> None:
        self._shards[shard].update_priorities.remote(ids_B, priorities_B)

    def stats(self, shard: int) -> Any:
        return self._shards[shard].stats.remote()

    def wait(self, tickets: Sequence[Any], num_returns: int, timeout: float | None) -> list[Any]:
        ready, _ = ray.wait(list(tickets), num_returns=num_returns, timeout=timeout)
        return ready

    def result(self, ticket: Any, timeout: float | None = None) -> Any:
        try:
            return ray.get(ticket, timeout=timeout)
        except (ray.exceptions.RayError, ray.exceptions.GetTimeoutError) as exc:
            raise ShardDown(str(exc)) from exc


class RayWeightStore:
    """``WeightStore`` over the parameter server actor: each version's weights are put into
    the object store once, and the parameter server holds a reference to them."""

    def __init__(self, ps: Any) -> None:
        self._ps = ps

    def publish(self, weights: dict[str, np.ndarray], version: int, force: bool = False) -> None:
        self._ps.publish.remote([ray.put(weights)], version, force)

    def pull_if_newer(self, version: int) -> tuple[dict[str, np.ndarray] | None, int]:
        ref_box, latest = ray.get(self._ps.pull_if_newer.remote(version))
        if ref_box is None:
            return None, version
        try:
            return ray.get(ref_box[0]), latest
        except ray.exceptions.ObjectLostError:
            # The learner that put them died; its restored successor publishes again shortly.
            return None, version


class ActorHost(ActorWorker):
    """An ``ActorWorker`` in its own Ray process, at lower priority than the learner."""

    def __init__(
        self,
        *,
        spec: ActorSpec,
        peers: Peers,
        num_cpus: float,
        batch_size: int,
        min_size_to_learn: int,
        throttle_stall_s: float = THROTTLE_STALL_S,
    ) -> None:
        cfg = spec.actors
        _lower_priority(actor_niceness(cfg.nice, cfg.num_actors))
        actor = spec.build()
        _limit_torch_threads(num_cpus, only_if_loaded=True)
        weights, replay = peers.connect()
        throttle = ActorThrottle(
            min_replay_ratio=cfg.min_replay_ratio,
            samples_per_update=batch_size,
            min_size_to_learn=min_size_to_learn,
            num_actors=cfg.num_actors,
            restarted=_was_restarted(),
            stall_s=throttle_stall_s,
        )
        super().__init__(
            actor,
            cfg=cfg,
            index=spec.index,
            replay=replay,
            weights=weights,
            throttle=throttle,
        )

    def node_id(self) -> str:
        """The Ray node this actor runs on (placement tests)."""
        return _node_id()

    def pid(self) -> int:
        """This actor's process id (the scale benchmark reads its memory)."""
        return os.getpid()


class ReplayShardHost(ShardWorker):
    """A ``ShardWorker`` in its own Ray process; a restarted one reloads its snapshot."""

    def __init__(
        self,
        *,
        spec: ShardSpec,
        snapshot_every_s: float = 0.0,
        load_snapshot: bool = False,
    ) -> None:
        super().__init__(
            spec,
            snapshot_every_s=snapshot_every_s,
            load_snapshot=load_snapshot or _was_restarted(),
        )

    def node_id(self) -> str:
        """The Ray node this shard runs on (placement tests)."""
        return _node_id()


class LearnerHost(LearnerWorker):
    """A ``LearnerWorker`` in its own Ray process (on a GPU when it has one).

    A restarted learner waits for the driver's ``restore`` (its latest checkpoint) rather than
    announcing freshly initialised weights to the actors.
    """

    def __init__(
        self,
        *,
        spec: LearnerSpec,
        peers: Peers,
        seed: int,
        rank: int = 0,
    ) -> None:
        _learner_threads(spec)
        _warn_if_niced()
        # Samples arrive as read-only zero-copy arrays; the learner never writes to them.
        warnings.filterwarnings("ignore", message="The given NumPy array is not writable")
        weights, replay = peers.connect()
        super().__init__(
            spec.build(),
            replay_cfg=spec.replay,
            replay=replay,
            weights=weights,
            seed=seed,
            rank=rank,
            publish_now=not _was_restarted(),
        )

    def group_address(self) -> tuple[str, int]:
        """This node's address and a free port there: rank 0's answer is where the group of
        learners meets (``join_group``)."""
        address = ray.util.get_node_ip_address()
        with socket.socket(socket.AF_INET6 if ":" in address else socket.AF_INET) as sock:
            sock.bind(("", 0))
            port = sock.getsockname()[1]
        return address, port

    def pid(self) -> int:
        """The learner's process id (the driver tells a dead group member by it)."""
        return os.getpid()

    def node_id(self) -> str:
        """The Ray node this learner runs on (placement tests)."""
        return _node_id()


class EvaluatorHost(EvaluatorWorker):
    """An ``EvaluatorWorker`` in its own Ray process."""

    def __init__(
        self,
        *,
        spec: EvaluatorSpec,
        peers: Peers,
        interval_s: float,
        num_cpus: float,
        max_env_errors: int = 10,
    ) -> None:
        weights, _ = peers.connect()
        super().__init__(
            spec,
            weights=weights,
            interval_s=interval_s,
            max_env_errors=max_env_errors,
        )
        _limit_torch_threads(num_cpus, only_if_loaded=True)
