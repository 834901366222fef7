"""The Ray cluster a run uses: start or join it, check it can host the run, and where the
learners and shards go."""

from __future__ import annotations

import os
import signal
import socket
import threading
from typing import Any

import ray

from apex_dqn.config import Config, ConfigError, RayConfig
from apex_dqn.config.run import ray_host_port
from apex_dqn.runtime.shares import required_cpus, usable_cpus

PLACEMENT_TIMEOUT_S = 60.0
CONNECT_TIMEOUT_S = 5.0


def check_reachable(cfg: RayConfig, timeout_s: float = CONNECT_TIMEOUT_S) -> None:
    """ConfigError, within about ``timeout_s`` (name resolution aside), when nothing answers at
    the head's address (``ray.address``, else ``RAY_ADDRESS``, which 'auto' also reads):
    ``ray.init`` would wait for it for minutes, printing Ray's GCS warnings. A Ray this process
    already joined is reused, unchecked; a plain 'auto' and a local instance are left to Ray."""
    if ray.is_initialized():
        return
    key, address = "ray.address", cfg.address or None
    if address in (None, "auto") and os.environ.get("RAY_ADDRESS"):
        key, address = "RAY_ADDRESS", os.environ["RAY_ADDRESS"]
    if address is None:
        return
    target = ray_host_port(key, address)
    if target is None:
        return
    host, port = target
    try:
        with socket.create_connection((host, port), timeout=timeout_s):
            pass
    except OSError as exc:
        reason = f"no answer in {timeout_s:g} s" if isinstance(exc, TimeoutError) else exc
        raise ConfigError(
            f"{key}={address}: no Ray head answers at {host}:{port} ({reason}); start one "
            f"there (ray start --head --port={port}) or give the head's address"
        ) from None


def _address(cfg: RayConfig) -> str | None:
    """The address the run joins: ``ray.address``, else ``RAY_ADDRESS`` (None: neither)."""
    return cfg.address or os.environ.get("RAY_ADDRESS") or None


def local_instance(cfg: RayConfig) -> bool:
    """Whether the run starts a Ray instance of its own (no address, or 'local'), which is
    sized to this machine, rather than joining a cluster."""
    return _address(cfg) in (None, "local")


def init_ray(cfg: RayConfig) -> bool:
    """Start a local Ray instance or connect to ``ray.address``; True if this call started it.

    An already initialised Ray (Hydra multirun in one process) is reused.
    """
    if ray.is_initialized():
        return False
    address = _address(cfg)
    # ray.init sets SIGTERM to sys.exit (and a local instance's to a kill of its processes):
    # the run's own handler (apex_dqn.run.signals) is put back, so SIGTERM stops the run with
    # its checkpoint and outputs from the first moment, and Ray is shut down as on any stop.
    main_thread = threading.current_thread() is threading.main_thread()
    sigterm = signal.getsignal(signal.SIGTERM) if main_thread else None
    kwargs: dict[str, Any] = {"include_dashboard": False, "logging_level": "WARNING"}
    if local_instance(cfg):
        kwargs["num_cpus"] = cfg.num_cpus or usable_cpus()
        if cfg.object_store_memory is not None:
            kwargs["object_store_memory"] = cfg.object_store_memory
        # Ray starts workers at niceness 15; at 0 the learner (and the shards it waits on) win
        # the CPU over actors, which lower their own priority by actors.nice.
        kwargs["_system_config"] = {"worker_niceness": 0}
        # An explicit "local" stops ray.init from joining a stale cluster left by `ray start`.
        ray.init(address="local", **kwargs)
    else:
        ray.init(address=address, **kwargs)
    if main_thread and sigterm is not None:
        signal.signal(signal.SIGTERM, sigterm)
    return True


def object_store_used() -> int | None:
    """Bytes in use in the cluster's object stores (None if Ray does not say)."""
    total = ray.cluster_resources().get("object_store_memory")
    free = ray.available_resources().get("object_store_memory")
    return None if total is None or free is None else int(total - free)


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


def learner_gpus(cfg: Config) -> float:
    """GPUs per learner: learner.num_gpus, or with the auto device one each when the cluster
    has one for every learner."""
    if cfg.learner.num_gpus > 0:
        return cfg.learner.num_gpus
    wants_gpu = cfg.learner.device.startswith("cuda") or cfg.learner.device == "auto"
    have = ray.cluster_resources().get("GPU", 0)
    return 1.0 if wants_gpu and have >= cfg.learner.num_learners else 0.0


def learner_and_shard_placement(cfg: Config, gpus: float) -> tuple[Any, Any, Any]:
    """Scheduling strategies of learner ``r`` and of shard ``s`` (functions of ``r``, ``s``),
    and a check to call once they are submitted.

    ``colocate``: one placement group, STRICT_PACK, whose first bundles hold the learners'
    resources (CPUs, GPU, custom resources) and one bundle per shard: Ray puts them all on one
    node that offers everything, and re-creates the group elsewhere if that node dies.
    ``spread``: shards use Ray's SPREAD strategy. ``any``: Ray's default.

    The group is not waited for here: the learners and shards wait for it themselves, so the
    check (ConfigError when no node can host the group) runs while they start, not before.
    """
    from ray.util.placement_group import placement_group
    from ray.util.scheduling_strategies import PlacementGroupSchedulingStrategy

    if cfg.replay.placement != "colocate":
        strategy = "SPREAD" if cfg.replay.placement == "spread" else "DEFAULT"
        return lambda r: "DEFAULT", lambda s: strategy, lambda: None

    def bundle(resources: dict[str, float]) -> dict[str, float]:
        kept = {k: v for k, v in resources.items() if v > 0}
        return kept or {"CPU": 0.001}  # a bundle may not be empty

    learner = bundle({"CPU": cfg.learner.num_cpus, "GPU": gpus, **cfg.learner.resources})
    shard = bundle({"CPU": cfg.replay.num_cpus})
    k = cfg.learner.num_learners
    group = placement_group([learner] * k + [shard] * cfg.replay.num_shards, strategy="STRICT_PACK")

    def check() -> None:
        try:
            ray.get(group.ready(), timeout=PLACEMENT_TIMEOUT_S)
        except ray.exceptions.GetTimeoutError:
            ray.util.remove_placement_group(group)
            raise ConfigError(
                f"replay.placement=colocate: no node offers {k} learner(s) of {learner} together "
                f"with {cfg.replay.num_shards} shard(s) of {shard}; use replay.placement=spread "
                "or lower the resources"
            ) from None

    def at(index: int) -> Any:
        return PlacementGroupSchedulingStrategy(group, placement_group_bundle_index=index)

    return at, lambda s: at(k + s), check
