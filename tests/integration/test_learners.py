"""Several learners on real Ray: gradients all-reduced over a gloo group, one learner publishing."""

from __future__ import annotations

import itertools
import json
import threading
import time

import pytest
import ray

from apex_dqn.algo.networks import weights_digest
from apex_dqn.config import CheckpointConfig, Config, LearnerConfig, ReplayConfig, TrainConfig
from apex_dqn.envs.factory import inspect_env
from apex_dqn.files.checkpoint import load_checkpoint
from apex_dqn.runtime.ray_runtime import NAMESPACE, train

BATCH = 64


def _config(**train: float) -> Config:
    return Config(
        learner=LearnerConfig(num_learners=2, num_cpus=0.5, device="cpu", batch_size=BATCH),
        replay=ReplayConfig(num_shards=2),
        train=TrainConfig(report_interval_s=1.0, **train),
        checkpoint=CheckpointConfig(every_s=2.0),
        seed=1,
    )


def _handles(suffix: str) -> list:
    names = sorted(
        a["name"]
        for a in ray.util.list_named_actors(all_namespaces=True)
        if a["namespace"] == NAMESPACE and a["name"].endswith(suffix)
    )
    return [ray.get_actor(n, namespace=NAMESPACE) for n in names]


def _checkpoint_digest(out) -> str:
    state = load_checkpoint(out / "checkpoint.pt")["learner"]["online"]
    return weights_digest({k: v.numpy() for k, v in state.items()})


@pytest.mark.ray
@pytest.mark.slow
def test_two_learners_solve_cartpole_with_identical_weights_and_twice_the_batch(tmp_path):
    cfg = _config(target_return=200.0, max_seconds=120.0)
    out = tmp_path / "run"
    served: dict = {}

    def count_served() -> None:  # shards still live here; the learners' last round is over
        stats = ray.get([s.stats.remote() for s in _handles("-shard0") + _handles("-shard1")])
        served["samples"] = sum(s.sampled for s in stats)

    summary = train(cfg, inspect_env(cfg.env), out, on_stopped=count_served)
    assert summary["solved"], summary
    digests = summary["learner_weights_digests"]
    assert len(digests) == 2 and digests[0] == digests[1]  # identical to the last bit
    assert digests[0] == _checkpoint_digest(out)  # and what rank 0 checkpointed
    # Every update averages the gradients of up to 2 batches of BATCH, one per learner: the
    # shards served about twice what one learner's updates consume, plus what each learner
    # holds unused at the end: up to `prefetch` requests in flight and two requests' batches
    # staged. One learner would have drawn about BATCH per update.
    steps = summary["learner_steps"]
    slack = 2 * (cfg.learner.prefetch + 2) * cfg.learner.batches_per_request * BATCH
    assert 1.5 * BATCH * steps < served["samples"] <= 2 * BATCH * steps + slack
    last = json.loads((out / "metrics.jsonl").read_text().splitlines()[-1])
    assert last["charts/learner_steps"] == steps


@pytest.mark.ray
@pytest.mark.slow
def test_a_dead_learner_restarts_the_group_from_the_checkpoint(tmp_path):
    cfg = _config(max_seconds=35.0, stop_on_target=False)
    out = tmp_path / "run"
    seen: dict = {}

    def kill_learner1() -> None:
        try:
            deadline = time.time() + 60
            while time.time() < deadline:
                time.sleep(0.5)
                handles = _handles("-learner") if ray.is_initialized() else []
                if handles and ray.get(handles[0].status.remote()).learner_steps >= 300:
                    break
            (learner1,) = _handles("-learner1")
            seen["killed_at"] = ray.get(handles[0].status.remote()).learner_steps
            ray.kill(learner1, no_restart=False)  # Ray restarts it, as after a crash
        except BaseException as exc:
            seen["error"] = f"{type(exc).__name__}: {exc}"

    killer = threading.Thread(target=kill_learner1, daemon=True)
    killer.start()
    summary = train(cfg, inspect_env(cfg.env), out)
    killer.join(timeout=30)
    assert "error" not in seen, seen["error"]
    assert summary["learner_restarts"] == 1, summary
    assert summary["stop_reason"] == "train.max_seconds reached"
    # The group came back from a checkpoint, not from scratch, and trained on.
    records = [json.loads(x) for x in (out / "metrics.jsonl").read_text().splitlines()]
    steps = [r["charts/learner_steps"] for r in records]
    drop = max(a - b for a, b in itertools.pairwise(steps))
    assert drop < 1_000, f"the learners fell back {drop} updates"
    assert summary["learner_steps"] > seen["killed_at"] + 200
    digests = summary["learner_weights_digests"]
    assert len(digests) == 2 and digests[0] == digests[1] == _checkpoint_digest(out)
