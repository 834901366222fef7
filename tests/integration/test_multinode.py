"""Placement on a multi-node cluster in one machine (ray.cluster_utils.Cluster), and a run that
loses an actor node and keeps training."""

from __future__ import annotations

import os
import signal
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

import pytest
import ray

from apex_dqn.config import (
    ActorsConfig,
    CheckpointConfig,
    Config,
    EvalConfig,
    LearnerConfig,
    RayConfig,
    ReplayConfig,
    TrainConfig,
)
from apex_dqn.core.metrics import (
    ACTOR_RESTARTS,
    SHARD_FAILURES,
    SHARD_RESTARTS,
    read_jsonl,
    shard_key,
)
from apex_dqn.envs.factory import inspect_env
from apex_dqn.runtime.ray_runtime import NAMESPACE, train


def _handles(kind: str) -> list:
    names = sorted(
        a["name"]
        for a in ray.util.list_named_actors(all_namespaces=True)
        if a["namespace"] == NAMESPACE and f"-{kind}" in a["name"]
    )
    return [ray.get_actor(n, namespace=NAMESPACE) for n in names]


def _wait_for(predicate, timeout: float) -> None:
    deadline = time.time() + timeout
    while not predicate():
        assert time.time() < deadline, "timed out"
        time.sleep(0.5)


@contextmanager
def _stoppable() -> Iterator[None]:
    """SIGTERM is ignored around the run, so a stop request that comes as the run ends on its
    own budget cannot end pytest; during the run the driver's own handler takes it."""
    previous = signal.signal(signal.SIGTERM, signal.SIG_IGN)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def _stop_once_past(
    out, removed_at: dict, seen: dict, counted: dict[str, int], env_steps: int = 5_000
) -> None:
    """Once the run has gone on past the loss (``env_steps`` more, new learner updates, and each
    metric of ``counted`` at least its value: the recovery the test asserts has been seen by the
    driver), ask it to stop as a user would (SIGTERM): the test then lasts as long as the
    recovery takes, not a fixed budget sized for the slowest machine."""

    def past() -> bool:
        records = _records(out)
        return bool(records) and (
            records[-1]["charts/env_steps"] > removed_at["charts/env_steps"] + env_steps
            and records[-1]["charts/learner_steps"] > removed_at["charts/learner_steps"]
            and all(records[-1].get(key, 0) >= n for key, n in counted.items())
        )

    _wait_for(lambda: seen.get("train_returned") or past(), 90)
    if not seen.get("train_returned"):  # else SIGTERM could reach pytest after the run
        seen["stop_requested"] = True
        os.kill(os.getpid(), signal.SIGTERM)


@pytest.mark.multinode
@pytest.mark.ray
@pytest.mark.slow
def test_placement_by_resources_and_losing_an_actor_node(tmp_path):
    from ray.cluster_utils import Cluster

    # The head offers a (fake) GPU and the custom resource "learner"; two CPU nodes for actors.
    cluster = Cluster(
        initialize_head=True,
        head_node_args={"num_cpus": 2, "num_gpus": 1, "resources": {"learner": 1}},
    )
    try:
        workers = [cluster.add_node(num_cpus=2) for _ in range(2)]
        cluster.wait_for_nodes()
        cfg = Config(
            ray=RayConfig(address=cluster.address),
            actors=ActorsConfig(num_actors=2, num_cpus=1.0, min_replay_ratio=0.0),
            replay=ReplayConfig(num_shards=2, placement="colocate", num_cpus=0.1),
            learner=LearnerConfig(num_cpus=1.0, resources={"learner": 1.0}, device="cpu"),
            eval=EvalConfig(num_cpus=0.0),
            train=TrainConfig(max_seconds=180.0, stop_on_target=False, report_interval_s=1.0),
            checkpoint=CheckpointConfig(every_s=5.0),
        )
        out = tmp_path / "run"
        seen: dict = {}
        # The run is driven from this thread; a helper thread watches it and removes a node.
        # (Ray API calls racing the run's own shutdown raise there, not in pytest's thread.)
        watcher = threading.Thread(target=_watch, args=(cluster, workers, out, seen), daemon=True)
        watcher.start()
        with _stoppable():
            summary = train(cfg, inspect_env(cfg.env), out)
            seen["train_returned"] = True
            watcher.join(timeout=30)
        assert "error" not in seen, seen.get("error")
        assert summary["stop_reason"] == "interrupted by SIGTERM"  # by _stop_once_past
        assert seen["learner"] == seen["head"]  # by the "learner" resource
        assert seen["shards"] == [seen["head"], seen["head"]]  # colocated with the learner
        assert set(seen["actors"]) == seen["workers"]  # spread: one actor on each CPU node
        assert seen["after"] == {seen["survivor"]}  # actor 0 restarted on the node left
        assert summary["actor_restarts"] >= 1
        last, removed_at = _records(out)[-1], seen["removed_at"]
        assert last["charts/env_steps"] > removed_at["charts/env_steps"] + 5_000
        assert last["charts/learner_steps"] > removed_at["charts/learner_steps"]
    finally:
        if ray.is_initialized():
            ray.shutdown()
        cluster.shutdown()


def _watch(cluster, workers, out, seen: dict) -> None:
    """Record where the components run, remove actor 0's node, record where actors run then."""
    try:
        _wait_for(lambda: ray.is_initialized() and len(_handles("actor")) == 2, 90)
        _wait_for(lambda: _records(out) and _records(out)[-1]["charts/learner_steps"] > 0, 90)
        seen["head"] = cluster.head_node.node_id
        seen["workers"] = {w.node_id for w in workers}
        seen["learner"] = ray.get(_handles("learner")[0].node_id.remote())
        seen["shards"] = ray.get([s.node_id.remote() for s in _handles("shard")])
        seen["actors"] = ray.get([a.node_id.remote() for a in _handles("actor")])
        lost = next(w for w in workers if w.node_id == seen["actors"][0])
        cluster.remove_node(lost)
        seen["removed_at"] = _records(out)[-1]
        seen["survivor"] = next(w.node_id for w in workers if w is not lost)
        _wait_for(lambda: _actor_nodes() == {seen["survivor"]}, 60)
        seen["after"] = _actor_nodes()
        _stop_once_past(out, seen["removed_at"], seen, {ACTOR_RESTARTS: 1})
    except BaseException as exc:
        seen["error"] = f"{type(exc).__name__}: {exc}"


def _actor_nodes() -> set[str] | None:
    """The nodes the actors run on now (None while one of them is restarting)."""
    try:
        return set(ray.get([a.node_id.remote() for a in _handles("actor")], timeout=10))
    except (ray.exceptions.RayError, ray.exceptions.GetTimeoutError):
        return None


def _records(out) -> list[dict]:
    path = out / "metrics.jsonl"
    if not path.is_file():
        return []
    return read_jsonl(path)  # the run is writing it


@pytest.mark.multinode
@pytest.mark.ray
@pytest.mark.slow
def test_losing_a_node_with_actors_and_a_shard_restores_the_shard_from_its_snapshot(tmp_path):
    """A whole worker node goes (an actor and a replay shard on it): the shard restarts elsewhere
    with the data of its last snapshot, the loss is counted, the other shards keep theirs, and the
    run goes on."""
    from ray.cluster_utils import Cluster

    cluster = Cluster(
        initialize_head=True, head_node_args={"num_cpus": 2, "resources": {"learner": 1}}
    )
    try:
        workers = [cluster.add_node(num_cpus=2) for _ in range(2)]
        cluster.wait_for_nodes()
        cfg = Config(
            ray=RayConfig(address=cluster.address),
            actors=ActorsConfig(num_actors=2, num_cpus=0.5, min_replay_ratio=0.0),
            # Spread: the three shards over the three nodes (one each, as Ray places them).
            replay=ReplayConfig(
                num_shards=3, placement="spread", num_cpus=0.1, snapshot_every_s=1.0
            ),
            learner=LearnerConfig(num_cpus=1.0, resources={"learner": 1.0}, device="cpu"),
            eval=EvalConfig(num_cpus=0.0),
            train=TrainConfig(max_seconds=180.0, stop_on_target=False, report_interval_s=1.0),
            checkpoint=CheckpointConfig(every_s=5.0),
        )
        out = tmp_path / "run"
        seen: dict = {}
        watcher = threading.Thread(
            target=_watch_shard_node, args=(cluster, workers, out, seen), daemon=True
        )
        watcher.start()
        with _stoppable():
            summary = train(cfg, inspect_env(cfg.env), out)
            seen["train_returned"] = True
            watcher.join(timeout=30)
        assert "error" not in seen, seen.get("error")
        assert summary["stop_reason"] == "interrupted by SIGTERM"  # by _stop_once_past
        lost = seen["lost_shards"]
        assert summary["shard_failures"] >= len(lost) and summary["shard_restarts"] >= len(lost)
        assert summary["actor_restarts"] >= 1
        last = _records(out)[-1]
        for s in range(3):
            if s in lost:  # it reloaded its last snapshot (a fresh shard would start empty)
                assert 0 < seen["restored"][s] <= last[shard_key(s, "capacity")]
                assert last[shard_key(s, "size")] >= seen["restored"][s]
            else:  # the other shards lost nothing
                assert last[shard_key(s, "size")] >= seen["removed_at"][shard_key(s, "size")]
        assert last["charts/env_steps"] > seen["removed_at"]["charts/env_steps"] + 5_000
        assert last["charts/learner_steps"] > seen["removed_at"]["charts/learner_steps"]
    finally:
        if ray.is_initialized():
            ray.shutdown()
        cluster.shutdown()


def _watch_shard_node(cluster, workers, out, seen: dict) -> None:
    """Once every shard has a snapshot, remove a worker node holding a shard and an actor; then
    wait for its shards' successors and ask what they restored."""
    try:
        _wait_for(lambda: ray.is_initialized() and len(_handles("shard")) == 3, 90)
        _wait_for(lambda: len(list((out / "replay").glob("shard*.npz"))) == 3, 90)
        _wait_for(lambda: _records(out) and _records(out)[-1]["charts/learner_steps"] > 0, 90)
        shard_nodes = ray.get([s.node_id.remote() for s in _handles("shard")])
        actor_nodes = ray.get([a.node_id.remote() for a in _handles("actor")])
        node = next(
            (w for w in workers if w.node_id in shard_nodes and w.node_id in actor_nodes), None
        )
        assert node is not None, f"no worker node holds a shard and an actor: {shard_nodes}"
        lost = [s for s, n in enumerate(shard_nodes) if n == node.node_id]
        seen["lost_shards"] = lost
        time.sleep(2.0)  # a snapshot that holds more than the first push
        seen["removed_at"] = _records(out)[-1]
        cluster.remove_node(node)
        seen["restored"] = {}
        for s in lost:
            shard = _handles("shard")[s]
            _wait_for(lambda shard=shard: _answers(shard.restored_size) is not None, 60)
            seen["restored"][s] = _answers(shard.restored_size)
        counted = {ACTOR_RESTARTS: 1, SHARD_FAILURES: len(lost), SHARD_RESTARTS: len(lost)}
        _stop_once_past(out, seen["removed_at"], seen, counted)
    except BaseException as exc:
        seen["error"] = f"{type(exc).__name__}: {exc}"


def _answers(method):
    """The method's answer, or None while its actor is down or restarting."""
    try:
        return ray.get(method.remote(), timeout=10)
    except (ray.exceptions.RayError, ray.exceptions.GetTimeoutError):
        return None
