"""The Ray layer: starts or joins Ray, places the components, and drives a run.

This is the one place where plain classes become Ray actors (``ray.remote(**resources)(Cls)``).
The driver keeps one call in flight per actor (``run``), one per learner (``run_for``, called on
all learners of a group together) and one for the evaluator (``evaluate_latest``); transitions and
weights never pass through it, only counters and metrics do. Actors are created with
``max_restarts=-1``: Ray restarts a crashed one, and the driver resubmits its call and counts the
restart.
"""

from __future__ import annotations

import contextlib
import math
import os
import time
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import ray

from apex_dqn.config import Config, ConfigError, RayConfig
from apex_dqn.envs import EnvInfo
from apex_dqn.metrics import RunTracker
from apex_dqn.parameter_server import ParameterServer
from apex_dqn.runtime import common
from apex_dqn.runtime.hosts import (
    ActorHost,
    EvaluatorHost,
    LearnerHost,
    Peers,
    ReplayShardHost,
)

LEARNER_CALL_S = 0.25
# A component died (or is restarting: the call may or may not have run); Ray restarts it.
_ACTOR_GONE = (ray.exceptions.RayActorError, ray.exceptions.ActorUnavailableError)
NAMESPACE = "apex-dqn"


def init_ray(cfg: RayConfig) -> bool:
    """Start a local Ray instance or connect to ``ray.address``; True if this call started it.

    An already initialised Ray (Hydra multirun in one process) is reused.
    """
    if ray.is_initialized():
        return False
    address = cfg.address or os.environ.get("RAY_ADDRESS") or None
    kwargs: dict[str, Any] = {"include_dashboard": False, "logging_level": "WARNING"}
    if address is None:
        kwargs["num_cpus"] = cfg.num_cpus or os.cpu_count() or 1
        if cfg.object_store_memory is not None:
            kwargs["object_store_memory"] = cfg.object_store_memory
        # Ray starts workers at niceness 15; at 0 the learner (and the shards it waits on) win
        # the CPU over actors, which lower their own priority by actors.nice.
        kwargs["_system_config"] = {"worker_niceness": 0}
        # An explicit "local" stops ray.init from joining a stale cluster left by `ray start`.
        ray.init(address="local", **kwargs)
    else:
        ray.init(address=address, **kwargs)
    return True


def _object_store_used() -> int | None:
    """Bytes in use in the cluster's object stores (None if Ray does not say)."""
    total = ray.cluster_resources().get("object_store_memory")
    free = ray.available_resources().get("object_store_memory")
    return None if total is None or free is None else int(total - free)


def required_cpus(cfg: Config) -> float:
    """CPUs that all components together reserve."""
    return (
        cfg.actors.num_actors * cfg.actors.num_cpus
        + cfg.replay.num_shards * cfg.replay.num_cpus
        + cfg.learner.num_learners * cfg.learner.num_cpus
        + cfg.eval.num_cpus
        + cfg.ray.parameter_server_num_cpus
    )


def check_resources(cfg: Config) -> None:
    """Fail with a clear message when the cluster cannot host the run (instead of hanging)."""
    have = ray.cluster_resources()
    cpus = required_cpus(cfg)
    if cpus > have.get("CPU", 0) + 1e-9:
        raise ConfigError(
            f"the run reserves {cpus:g} CPUs (actors.num_actors * actors.num_cpus + "
            "replay.num_shards * replay.num_cpus + learner.num_learners * learner.num_cpus + "
            "eval.num_cpus + "
            f"ray.parameter_server_num_cpus) but the Ray cluster has {have.get('CPU', 0):g}: "
            "lower those num_cpus or the number of actors"
        )
    k = cfg.learner.num_learners
    times = f" x learner.num_learners={k}" if k > 1 else ""
    for name, amount in cfg.learner.resources.items():
        if k * amount > have.get(name, 0) + 1e-9:
            raise ConfigError(
                f"learner.resources.{name}={amount:g}{times} but the Ray cluster offers "
                f"{have.get(name, 0):g} of {name!r}: start a node with it "
                f"(ray start --resources='{{\"{name}\": 1}}') or drop the key"
            )
    if k * cfg.learner.num_gpus > have.get("GPU", 0) + 1e-9:
        raise ConfigError(
            f"learner.num_gpus={cfg.learner.num_gpus:g}{times} but the Ray cluster has "
            f"{have.get('GPU', 0):g} GPUs"
        )


def _learner_gpus(cfg: Config) -> float:
    """GPUs per learner: learner.num_gpus, or with the auto device one each when the cluster
    has one for every learner."""
    if cfg.learner.num_gpus > 0:
        return cfg.learner.num_gpus
    wants_gpu = cfg.learner.device.startswith("cuda") or cfg.learner.device == "auto"
    have = ray.cluster_resources().get("GPU", 0)
    return 1.0 if wants_gpu and have >= cfg.learner.num_learners else 0.0


def _learner_and_shard_placement(cfg: Config, gpus: float) -> tuple[Any, Any]:
    """Scheduling strategies of learner ``r`` and of shard ``s`` (functions of ``r``, ``s``).

    ``colocate``: one placement group, STRICT_PACK, whose first bundles hold the learners'
    resources (CPUs, GPU, custom resources) and one bundle per shard: Ray puts them all on one
    node that offers everything, and re-creates the group elsewhere if that node dies.
    ``spread``: shards use Ray's SPREAD strategy. ``any``: Ray's default.
    """
    from ray.util.placement_group import placement_group
    from ray.util.scheduling_strategies import PlacementGroupSchedulingStrategy

    if cfg.replay.placement != "colocate":
        strategy = "SPREAD" if cfg.replay.placement == "spread" else "DEFAULT"
        return lambda r: "DEFAULT", lambda s: strategy

    def bundle(resources: dict[str, float]) -> dict[str, float]:
        kept = {k: v for k, v in resources.items() if v > 0}
        return kept or {"CPU": 0.001}  # a bundle may not be empty

    learner = bundle({"CPU": cfg.learner.num_cpus, "GPU": gpus, **cfg.learner.resources})
    shard = bundle({"CPU": cfg.replay.num_cpus})
    k = cfg.learner.num_learners
    group = placement_group([learner] * k + [shard] * cfg.replay.num_shards, strategy="STRICT_PACK")
    try:
        ray.get(group.ready(), timeout=PLACEMENT_TIMEOUT_S)
    except ray.exceptions.GetTimeoutError:
        ray.util.remove_placement_group(group)
        raise ConfigError(
            f"replay.placement=colocate: no node offers {k} learner(s) of {learner} together with "
            f"{cfg.replay.num_shards} shard(s) of {shard}; use replay.placement=spread or lower "
            "the resources"
        ) from None

    def at(index: int) -> Any:
        return PlacementGroupSchedulingStrategy(group, placement_group_bundle_index=index)

    return at, lambda s: at(k + s)


PLACEMENT_TIMEOUT_S = 60.0


class _Components:
    """Handles to every remote component of one run.

    Every component is a named actor that Ray restarts when it dies (``max_restarts=-1``): an
    actor resumes acting, a shard comes back empty or from its snapshot, the parameter server
    comes back empty until the next publish, and the learner waits for the driver to send it
    the latest checkpoint (``_Driver``).
    """

    def __init__(self, cfg: Config, info: EnvInfo, out_dir: Path, resumes: int) -> None:
        ps_cls = ray.remote(num_cpus=cfg.ray.parameter_server_num_cpus, max_restarts=-1)(
            ParameterServer
        )
        shard_cls = ray.remote(num_cpus=cfg.replay.num_cpus, max_restarts=-1)(ReplayShardHost)
        gpus = _learner_gpus(cfg)
        learner_cls = ray.remote(
            num_cpus=cfg.learner.num_cpus,
            num_gpus=gpus,
            resources=dict(cfg.learner.resources),
            max_restarts=-1,
        )(LearnerHost)
        actor_cls = ray.remote(num_cpus=cfg.actors.num_cpus, max_restarts=-1)(ActorHost)
        learner_place, shard_place = _learner_and_shard_placement(cfg, gpus)
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
                replay_kwargs=common.replay_kwargs(cfg, info, s),
                snapshot_path=common.snapshot_path(cfg, out_dir, s),
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
                learner_kwargs=common.learner_kwargs(cfg, info),
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
                actor_kwargs=common.actor_kwargs(cfg, info, i, generation=resumes),
                peers=peers,
                num_cpus=cfg.actors.num_cpus,
                batch_size=cfg.learner.batch_size * cfg.learner.num_learners,
                min_size_to_learn=cfg.replay.min_size_to_learn,
            )
            for i in range(cfg.actors.num_actors)
        ]
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
        """Create the evaluator; it is started once learning has begun (see ``_Driver``)."""
        cfg, info, peers = self._eval_args
        eval_cls = ray.remote(num_cpus=cfg.eval.num_cpus, max_restarts=-1)(EvaluatorHost)
        self.evaluator = eval_cls.remote(
            evaluator_kwargs=common.evaluator_kwargs(cfg, info, generation=self._resumes),
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


class _Driver:
    """The driver loop of one run: dispatch results, checkpoint, report, decide when to stop."""

    def __init__(
        self,
        cfg: Config,
        info: EnvInfo,
        parts: _Components,
        outputs: common.RunOutputs,
        signals: common.StopSignals,
    ) -> None:
        self.cfg = cfg
        self.info = info
        self.parts = parts
        self.out = outputs
        self.signals = signals
        self.tracker = outputs.tracker
        self.inflight: dict[Any, tuple[str, int]] = {}
        self.target_reached = False
        self.failure: str | None = None
        self.latest_checkpoint: bytes | None = None
        self.actor_pids: dict[int, int] = {}
        # Answers of the learners' current round of run_for calls, by rank.
        self.learner_round: dict[int, dict] = {}
        every = cfg.checkpoint.every_s
        self.next_checkpoint = time.time() + every if every > 0 else math.inf

    def _submit(self, kind: str, index: int = 0) -> None:
        if kind == "actor":
            ref = self.parts.actors[index].run.remote()
        elif kind == "learner":
            # All learners of a group are called together: their calls end at the same round.
            self.learner_round = {}
            for rank, learner in enumerate(self.parts.learners):
                self.inflight[learner.run_for.remote(LEARNER_CALL_S)] = ("learner", rank)
            return
        elif kind == "checkpoint":
            ref = self.parts.learner.checkpoint_bytes.remote(self._extra())
        else:
            # Once solved, evaluations need no confirmation (train.stop_on_target=false).
            ref = self.parts.evaluator.evaluate_latest.remote(self.tracker.time_to_solve_s is None)
        self.inflight[ref] = (kind, index)

    def _extra(self) -> dict[str, Any]:
        return common.checkpoint_extra(self.cfg, self.info, self.tracker)

    def restore_learner(self, data: bytes | None, timeout_s: float = 300.0) -> dict:
        """Send ``data`` (a checkpoint, or None for fresh weights) to every learner; wait;
        return rank 0's answer.

        Calls made while Ray is still restarting a learner fail as unavailable; they are
        retried until it is back (or ``timeout_s`` passes).
        """

        def restore(handle: Any) -> Callable[[], Any]:
            return lambda: handle.restore.remote(data)

        answers = [_call_when_up(restore(h), timeout_s) for h in self.parts.learners]
        return answers[0]

    def _learner_died(self) -> None:
        """Ray restarts the learner process; give it the latest checkpoint and go on.

        In a group the other learners are stuck in a collective with the dead one: they are
        killed too (Ray restarts them), the group is formed anew and all restore the same
        checkpoint, so that they start again from identical weights.
        """
        t = self.tracker
        t.learner_restarts += 1
        # The new learner process counts shard events from 0 again.
        self._shard_base = (t.shard_failures, t.shard_restarts)
        for ref, (kind, _) in list(self.inflight.items()):
            if kind in ("checkpoint", "learner"):
                del self.inflight[ref]
        if len(self.parts.learners) > 1:
            self.parts.restart_learners()
            self.parts.form_learner_group()
        restored = self.restore_learner(self.latest_checkpoint)
        print(
            f"apex-dqn: learner restarted from the checkpoint at update "
            f"{restored['learner_steps']:,}",
            flush=True,
        )

    def _handle(self, ref: Any) -> None:
        kind, index = self.inflight.pop(ref)
        try:
            result = ray.get(ref)
        except _ACTOR_GONE:
            if kind == "learner":
                self._learner_died()
            if kind != "checkpoint":
                self._submit(kind, index)
            return
        except ray.exceptions.RayTaskError as exc:
            cause = exc.cause if exc.cause is not None else exc
            group = kind == "learner" and len(self.parts.learners) > 1
            if group and self.parts.learner_group_broken():
                # Another learner of the group died mid-round: restart the group.
                self._learner_died()
                self._submit(kind, index)
                return
            # An exception raised by our own code in a component (e.g. EnvFailure): fatal.
            self.failure = f"{kind} {index}: {type(cause).__name__}: {cause}"
            return
        t = self.tracker
        if kind == "actor":
            # A new process id is a restart (the driver may see several failed calls per one).
            if self.actor_pids.get(index, result["pid"]) != result["pid"]:
                t.actor_restarts += 1
            self.actor_pids[index] = result["pid"]
            self._count_actor_work(result)
            t.add_actor_report(index, result)
            t.actor_versions[index] = result["weights_version"]
        elif kind == "learner":
            self.learner_round[index] = result
            if len(self.learner_round) < len(self.parts.learners):
                return  # the round goes on until every learner has answered
            result = self.learner_round[0]
            t.learner_steps = result["learner_steps"]
            t.weights_version = result["weights_version"]
            t.skipped_updates = result["skipped_updates"]
            t.replay = result["replay"]
            t.learner_metrics = result["metrics"]
            t.add_learner_timers(result.get("timers", {}))
            t.shard_failures = self._shard_base[0] + result["shard_failures"]
            t.shard_restarts = self._shard_base[1] + result["shard_restarts"]
            if self.cfg.eval.enabled and self.parts.evaluator is None and t.learner_steps > 0:
                # Started only now: at start-up its process would compete with the actors and
                # the learner for the CPU, only to evaluate the untrained network.
                self.parts.start_evaluator()
                self._submit("eval")
        elif kind == "checkpoint":
            self.latest_checkpoint = result
            self.out.save_checkpoint(result)
            return
        elif result is not None and "mean_return" in result:
            reached = t.add_eval(result["mean_return"], result)
            self.target_reached = self.target_reached or reached
        elif result is not None:
            t.env_errors += result.get("env_errors", 0)
        self._submit(kind, index)

    def _count_actor_work(self, result: dict[str, Any]) -> None:
        """Add one actor call's env steps, env errors and pushed / lost transitions."""
        t = self.tracker
        t.env_steps += result["env_steps"]
        t.env_errors += result["env_errors"]
        t.transitions_pushed += result["pushed"]
        t.transitions_lost += result["lost"]

    def _should_stop(self, deadline: float) -> str | None:
        if self.failure is not None:
            return f"failed: {self.failure}"
        if self.signals.received is not None:
            return f"interrupted by {self.signals.name}"
        if self.target_reached and self.cfg.train.stop_on_target:
            return "target return reached"
        if self.tracker.env_steps >= self.cfg.train.max_env_steps:
            return "train.max_env_steps reached"
        if time.time() >= deadline:
            return "train.max_seconds reached"
        return None

    def loop(self) -> str:
        """Run until a stop condition holds; return the reason."""
        t = self.tracker
        # Shard counters restart at 0 in a new learner process; keep the run's totals.
        self._shard_base = (t.shard_failures, t.shard_restarts)
        for i in range(len(self.parts.actors)):
            self._submit("actor", i)
        self._submit("learner")
        deadline = time.time() + self.cfg.train.max_seconds
        next_report = time.time() + self.cfg.train.report_interval_s
        while (reason := self._should_stop(deadline)) is None:
            now = time.time()
            if now >= self.next_checkpoint:
                if "checkpoint" not in {k for k, _ in self.inflight.values()}:
                    self._submit("checkpoint")
                self.next_checkpoint = now + self.cfg.checkpoint.every_s
            timeout = max(0.0, min(next_report, deadline, self.next_checkpoint) - now)
            ready, _ = ray.wait(list(self.inflight), num_returns=1, timeout=min(timeout, 0.5))
            for ref in ready:
                self._handle(ref)
            if time.time() >= next_report:
                t.object_store_used = _object_store_used()
                self.out.report()
                # max(): after a long blocking step (a learner restart) report once, not in a burst.
                next_report = max(next_report + self.cfg.train.report_interval_s, time.time() + 0.5)
        return reason

    def drain_actors(self, timeout_s: float = 1.0) -> None:
        """Let the actors' calls in flight finish (a few ms each) so their pushes are counted."""
        refs = [ref for ref, (kind, _) in self.inflight.items() if kind == "actor"]
        ready, _ = ray.wait(refs, num_returns=len(refs), timeout=timeout_s)
        for ref in ready:
            del self.inflight[ref]
            with contextlib.suppress(ray.exceptions.RayError):
                self._count_actor_work(ray.get(ref))

    def end_learner_round(self, timeout_s: float = 30.0) -> None:
        """Wait for the learners' calls in flight; then stop all but rank 0, which alone is
        needed for the last counters and checkpoint. A learner still blocked in a collective
        (its group broken by a failure) is freed by that: its collective fails."""
        refs = [ref for ref, (kind, _) in self.inflight.items() if kind == "learner"]
        ready, _ = ray.wait(refs, num_returns=len(refs), timeout=timeout_s)
        for ref in refs:
            del self.inflight[ref]
        if len(self.parts.learners) > 1 and len(ready) == len(refs):
            with contextlib.suppress(ray.exceptions.RayError):
                self.tracker.learner_digests = ray.get(
                    [h.weights_digest.remote() for h in self.parts.learners], timeout=timeout_s
                )
        for handle in self.parts.learners[1:]:
            ray.kill(handle, no_restart=True)
        self.parts.learners = self.parts.learners[:1]

    def sync_learner(self) -> None:
        """Take the learner's counters after its call in flight, so the summary, the last
        metrics record and the final checkpoint agree."""
        with contextlib.suppress(ray.exceptions.RayError):
            status = ray.get(self.parts.learner.status.remote(), timeout=30)
            t = self.tracker
            t.learner_steps = status["learner_steps"]
            t.weights_version = status["weights_version"]
            t.skipped_updates = status["skipped_updates"]
            t.replay = status["replay"]

    def final_checkpoint(self) -> None:
        """Checkpoint the learner once more (after a restart if it just died)."""
        for _ in range(2):
            try:
                data = ray.get(self.parts.learner.checkpoint_bytes.remote(self._extra()))
            except _ACTOR_GONE:
                self._learner_died()
                continue
            self.latest_checkpoint = data
            self.out.save_checkpoint(data)
            return


def train(
    cfg: Config,
    info: EnvInfo,
    out_dir: Path,
    resume: common.Resume | None = None,
    on_stopped: Callable[[], None] | None = None,
) -> dict[str, Any]:
    """Run Ape-X DQN on Ray with ``cfg``; write the run's files to ``out_dir``; return summary.

    With ``resume``, counters, curve and learner continue from its checkpoint. ``on_stopped``
    is called once the actors have stopped, while shards and learner still live (the soak
    benchmark reads the shards' counters there).
    """
    tracker = RunTracker(
        env_id=cfg.env.id,
        seed=cfg.seed,
        target_return=common.target_return(cfg, info),
        batch_size=cfg.learner.batch_size * cfg.learner.num_learners,
    )
    if resume is not None:
        resume.apply_to(tracker)
    started = init_ray(cfg.ray)
    outputs: common.RunOutputs | None = None
    try:
        check_resources(cfg)
        with common.StopSignals() as signals:
            parts = _Components(cfg, info, out_dir, resumes=tracker.resumes)
            outputs = common.RunOutputs(out_dir, cfg, tracker)
            driver = _Driver(cfg, info, parts, outputs, signals)
            parts.form_learner_group()
            if resume is not None:
                restored = driver.restore_learner(resume.data)
                driver.latest_checkpoint = resume.data
                restored["replay_restored"] = sum(
                    ray.get([shard.restored_size.remote() for shard in parts.shards])
                )
                tracker.resumed_from = {"run_dir": str(resume.run_dir), **restored}
            print(
                f"apex-dqn: {cfg.env.id}, {cfg.actors.num_actors} actors x "
                f"{cfg.actors.envs_per_actor} envs, {cfg.replay.num_shards} replay shard(s), "
                f"target return {tracker.target_return}, output {outputs.dir}"
                + (f", resumed at update {tracker.learner_steps:,}" if resume else ""),
                flush=True,
            )
            reason = driver.loop()
            tracker.stop_reason = reason
            tracker.interrupted_by = signals.received
            driver.drain_actors()
            # Actors and evaluator stop now, so the checkpoint and plot get the CPU.
            for handle in [*parts.actors, parts.evaluator]:
                if handle is not None:
                    ray.kill(handle, no_restart=True)
            driver.end_learner_round()
            driver.sync_learner()
            outputs.report()
            print(f"apex-dqn: stopping ({reason})", flush=True)
            if on_stopped is not None:
                on_stopped()
            driver.final_checkpoint()
            # Summary and plot are written while Ray shuts down (about a second of waiting on
            # its processes); the learner's checkpoint above is the last thing Ray was needed
            # for.
            with ThreadPoolExecutor(max_workers=1) as pool:
                finished = pool.submit(outputs.finish)
                if started:
                    ray.shutdown()
                    started = False
                return finished.result()
    finally:
        if outputs is not None:
            outputs.close_sinks()  # a failed run still finishes its wandb run
        if started:
            ray.shutdown()
