"""The Ray runtime: the roles as named Ray actors, and the driver's calls as remote calls.

This is the one place where roles become Ray actors (``ray.remote(**resources)(Host)``). Every
component is created with ``max_restarts=-1``: Ray restarts a crashed one, and the driver
(``apex_dqn.run.driver``) resubmits its call and counts the restart.
"""

from __future__ import annotations

import contextlib
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import ray

from apex_dqn.config import Config
from apex_dqn.core.reports import LearnerReport, Restored
from apex_dqn.envs.factory import EnvInfo
from apex_dqn.roles import build
from apex_dqn.roles.parameter_server import ParameterServer
from apex_dqn.run import driver
from apex_dqn.run.driver import WorkerFailed, WorkerGone
from apex_dqn.run.outputs import Resume
from apex_dqn.runtime.hosts import (
    ActorHost,
    EvaluatorHost,
    LearnerHost,
    Peers,
    ReplayShardHost,
)
from apex_dqn.runtime.ray_cluster import (
    check_resources,
    init_ray,
    learner_and_shard_placement,
    learner_gpus,
    object_store_used,
)

__all__ = ["NAMESPACE", "RayRuntime", "form_learner_group", "init_ray", "train"]

# A component died (or is restarting: the call may or may not have run); Ray restarts it.
_ACTOR_GONE = (ray.exceptions.RayActorError, ray.exceptions.ActorUnavailableError)
NAMESPACE = "apex-dqn"


class _Components:
    """Handles to every remote component of one run.

    Every component is a named actor that Ray restarts when it dies (``max_restarts=-1``): an
    actor resumes acting, a shard comes back empty or from its snapshot, the parameter server
    comes back empty until the next publish, and the learner waits for the driver to send it
    the latest checkpoint (``Driver``).
    """

    def __init__(self, cfg: Config, info: EnvInfo, out_dir: Path, resumes: int) -> None:
        ps_cls = ray.remote(num_cpus=cfg.ray.parameter_server_num_cpus, max_restarts=-1)(
            ParameterServer
        )
        shard_cls = ray.remote(num_cpus=cfg.replay.num_cpus, max_restarts=-1)(ReplayShardHost)
        gpus = learner_gpus(cfg)
        learner_cls = ray.remote(
            num_cpus=cfg.learner.num_cpus,
            num_gpus=gpus,
            resources=dict(cfg.learner.resources),
            max_restarts=-1,
        )(LearnerHost)
        actor_cls = ray.remote(num_cpus=cfg.actors.num_cpus, max_restarts=-1)(ActorHost)
        learner_place, shard_place, placement_check = learner_and_shard_placement(cfg, gpus)
        actor_place = "SPREAD" if cfg.actors.spread else "DEFAULT"
        self.run_id = run_id = uuid.uuid4().hex[:8]
        peers = Peers(
            parameter_server=f"apex-dqn-{run_id}-ps",
            shards=tuple(f"apex-dqn-{run_id}-shard{s}" for s in range(cfg.replay.num_shards)),
            namespace=NAMESPACE,
        )
        self.ps = ps_cls.options(name=peers.parameter_server, namespace=NAMESPACE).remote()
        self.shards: list[Any] = [
            shard_cls.options(
                name=name, namespace=NAMESPACE, scheduling_strategy=shard_place(s)
            ).remote(
                spec=build.shard_spec(cfg, info, s, out_dir),
                snapshot_every_s=cfg.replay.snapshot_every_s,
                load_snapshot=resumes > 0,
            )
            for s, name in enumerate(peers.shards)
        ]
        self.learners: list[Any] = [
            learner_cls.options(
                name=f"apex-dqn-{run_id}-learner" + (str(rank) if rank else ""),
                namespace=NAMESPACE,
                scheduling_strategy=learner_place(rank),
            ).remote(
                spec=build.learner_spec(cfg, info),
                peers=peers,
                seed=cfg.seed,
                rank=rank,
            )
            for rank in range(cfg.learner.num_learners)
        ]
        self.learner: Any = self.learners[0]  # publishes; the one checkpointed
        self.actors: list[Any] = [
            actor_cls.options(
                name=f"apex-dqn-{run_id}-actor{i}",
                namespace=NAMESPACE,
                scheduling_strategy=actor_place,
            ).remote(
                spec=build.actor_spec(cfg, info, i, generation=resumes),
                peers=peers,
                num_cpus=cfg.actors.num_cpus,
                batch_size=cfg.learner.batch_size * cfg.learner.num_learners,
                min_size_to_learn=cfg.replay.min_size_to_learn,
            )
            for i in range(cfg.actors.num_actors)
        ]
        placement_check()  # while the processes start
        self.evaluator: Any = None
        self._eval_args = (cfg, info, peers)
        self._resumes = resumes
        self.learner_pids: list[int] = []

    def form_learner_group(self, timeout_s: float = 300.0) -> None:
        """With several learners: join them in one group (``form_learner_group``)."""
        if len(self.learners) > 1:
            self.learner_pids = form_learner_group(self.learners, timeout_s)

    def restart_learners(self, timeout_s: float = 300.0) -> None:
        """Kill every learner of the group (Ray restarts each) and wait until all answer from
        new processes: the survivors of a dead member are stuck with a broken group."""
        for handle in self.learners:
            ray.kill(handle, no_restart=False)
        deadline = time.time() + timeout_s
        for handle, old_pid in zip(self.learners, self.learner_pids, strict=True):
            while True:
                with contextlib.suppress(ray.exceptions.RayError):
                    if ray.get(handle.pid.remote(), timeout=timeout_s) != old_pid:
                        break
                if time.time() >= deadline:
                    raise TimeoutError(f"a learner did not come back within {timeout_s:g} s")
                time.sleep(0.2)

    def learner_group_broken(self) -> bool:
        """Whether a learner of the group died since the group formed (a process that is gone,
        restarting or new): the others' collectives fail, and the group must form anew."""
        for handle, pid in zip(self.learners, self.learner_pids, strict=True):
            try:
                if ray.get(handle.pid.remote(), timeout=60) != pid:
                    return True
            except (ray.exceptions.RayError, ray.exceptions.GetTimeoutError):
                return True
        return False

    def start_evaluator(self) -> None:
        """Create the evaluator; it is started once learning has begun (see ``Driver``)."""
        cfg, info, peers = self._eval_args
        eval_cls = ray.remote(num_cpus=cfg.eval.num_cpus, max_restarts=-1)(EvaluatorHost)
        self.evaluator = eval_cls.remote(
            spec=build.evaluator_spec(cfg, info, generation=self._resumes),
            peers=peers,
            interval_s=cfg.eval.interval_s,
            num_cpus=cfg.eval.num_cpus,
            max_env_errors=cfg.actors.max_env_errors,
        )


def form_learner_group(learners: list[Any], timeout_s: float = 300.0) -> list[int]:
    """Let learner actors meet at rank 0's address and join one torch.distributed group (Ray
    tells each where; torch.distributed does the rest); return their process ids. Learners
    Ray is still (re)starting are waited for."""
    address, port = _call_when_up(lambda: learners[0].group_address.remote(), timeout_s)
    refs = {rank: h.join_group.remote(address, port) for rank, h in enumerate(learners)}
    pids = [0] * len(learners)
    deadline = time.time() + timeout_s
    while refs:
        rank, ref = refs.popitem()
        try:
            pids[rank] = ray.get(ref, timeout=max(1.0, deadline - time.time()))
        except ray.exceptions.ActorUnavailableError:
            if time.time() >= deadline:
                raise
            time.sleep(0.2)  # still restarting: the others wait in the rendezvous
            refs[rank] = learners[rank].join_group.remote(address, port)
    return pids


def _call_when_up(submit: Callable[[], Any], timeout_s: float) -> Any:
    """``ray.get(submit())``, retried while the actor is being (re)started by Ray."""
    deadline = time.time() + timeout_s
    while True:
        try:
            return ray.get(submit())
        except ray.exceptions.ActorUnavailableError:
            if time.time() >= deadline:
                raise
            time.sleep(0.2)


def finished(refs: list[Any], timeout: float) -> list[Any]:
    """Every ref of ``refs`` that has finished, waiting up to ``timeout`` for the first.

    All of them, not only the first: one ``ray.wait`` over all the calls in flight costs the
    driver time in proportion to the number of actors, so one answer per wait would make its
    cost per actor call grow with the number of actors too.
    """
    if not refs:
        return []
    ready, rest = ray.wait(refs, num_returns=1, timeout=timeout)
    if ready and rest:
        more, _ = ray.wait(rest, num_returns=len(rest), timeout=0)
        ready += more
    return ready


class RayRuntime:
    """``Runtime`` over the components of one Ray run (see ``apex_dqn.run.driver``)."""

    def __init__(self, parts: _Components) -> None:
        self.parts = parts
        self.num_actors = len(parts.actors)
        self.num_learners = len(parts.learners)

    def call_actor(self, index: int) -> Any:
        return self.parts.actors[index].run.remote()

    def call_learners(self, seconds: float) -> list[Any]:
        return [learner.run_for.remote(seconds) for learner in self.parts.learners]

    def call_checkpoint(self, extra: dict[str, Any]) -> Any:
        return self.parts.learner.checkpoint_bytes.remote(extra)

    def call_eval(self, confirm: bool) -> Any:
        return self.parts.evaluator.evaluate_latest.remote(confirm)

    def start_evaluator(self) -> None:
        self.parts.start_evaluator()

    def wait(self, tickets: list[Any], timeout: float) -> list[Any]:
        return finished(tickets, timeout)

    def result(self, ticket: Any) -> Any:
        try:
            return ray.get(ticket)
        except _ACTOR_GONE as exc:
            raise WorkerGone(str(exc)) from exc
        except ray.exceptions.RayTaskError as exc:
            raise WorkerFailed(exc.cause if exc.cause is not None else exc) from exc

    def restore_learners(self, data: bytes | None, timeout_s: float = 300.0) -> Restored:
        """Calls made while Ray is still restarting a learner fail as unavailable; they are
        retried until it is back (or ``timeout_s`` passes)."""

        def restore(handle: Any) -> Callable[[], Any]:
            return lambda: handle.restore.remote(data)

        answers = [_call_when_up(restore(h), timeout_s) for h in self.parts.learners]
        return answers[0]

    def restart_learner_group(self) -> None:
        self.parts.restart_learners()
        self.parts.form_learner_group()

    def learner_group_broken(self) -> bool:
        return self.parts.learner_group_broken()

    def finish_learners(self, timeout_s: float, digests: bool) -> list[str] | None:
        """A learner still blocked in a collective (its group broken by a failure) is freed
        when the others stop: its collective fails."""
        learners = self.parts.learners
        found = None
        if len(learners) > 1 and digests:
            with contextlib.suppress(ray.exceptions.RayError):
                found = ray.get([h.weights_digest.remote() for h in learners], timeout=timeout_s)
        for handle in learners[1:]:
            ray.kill(handle, no_restart=True)
        self.parts.learners = learners[:1]
        self.num_learners = 1
        return found

    def stop_actors(self) -> None:
        for handle in [*self.parts.actors, self.parts.evaluator]:
            if handle is not None:
                ray.kill(handle, no_restart=True)

    def learner_status(self) -> LearnerReport | None:
        try:
            status: LearnerReport = ray.get(self.parts.learner.status.remote(), timeout=30)
        except ray.exceptions.RayError:
            return None
        return status

    def replay_restored(self) -> int:
        return sum(ray.get([shard.restored_size.remote() for shard in self.parts.shards]))

    def snapshot_replay(self, timeout_s: float) -> int:
        refs = [shard.snapshot.remote() for shard in self.parts.shards]
        ready, _ = ray.wait(refs, num_returns=len(refs), timeout=timeout_s)
        written = 0
        for ref in ready:
            try:
                written += ray.get(ref) or 0
            except ray.exceptions.RayError:  # a lost shard keeps its last periodic snapshot
                continue
        return written

    def object_store_used(self) -> int | None:
        return object_store_used()


@contextlib.contextmanager
def open_ray_runtime(
    cfg: Config, info: EnvInfo, out_dir: Path, resumes: int
) -> Iterator[RayRuntime]:
    """Start (or join) Ray, check it can host the run, create the components and form the
    learner group; shut down a Ray instance this started on exit."""
    started = init_ray(cfg.ray)
    try:
        check_resources(cfg)
        parts = _Components(cfg, info, out_dir, resumes=resumes)
        parts.form_learner_group()
        yield RayRuntime(parts)
    finally:
        if started:
            ray.shutdown()


def train(
    cfg: Config,
    info: EnvInfo,
    out_dir: Path,
    resume: Resume | None = None,
    on_stopped: Callable[[], None] | None = None,
    started_at: float | None = None,
) -> dict[str, Any]:
    """Run Ape-X DQN on Ray with ``cfg`` (``apex_dqn.run.driver.train``)."""
    return driver.train(cfg, info, out_dir, open_ray_runtime, resume, on_stopped, started_at)
