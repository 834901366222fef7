"""The roles without Ray: shard health, actor pushes and throttle, the learner's feeder, ratio
gate, priority routing and group rounds, bound to in-process ports."""

from __future__ import annotations

import dataclasses
import threading
from typing import Any

import numpy as np
import pytest

from apex_dqn.algo.learner import Learner, LearnerMetrics, StepResult
from apex_dqn.config import ActorsConfig, Config, LearnerConfig, NetworkConfig, ReplayConfig
from apex_dqn.core.reports import ActorReport
from apex_dqn.core.rules import ActorThrottle
from apex_dqn.core.types import ReplayStats
from apex_dqn.envs.factory import inspect_env
from apex_dqn.roles import build
from apex_dqn.roles.actor_worker import PUSHES_PER_SHARD, ActorWorker
from apex_dqn.roles.learner_worker import LearnerWorker
from apex_dqn.roles.parameter_server import ParameterServer
from apex_dqn.roles.ports import ShardDown
from apex_dqn.roles.shard_book import ShardBook
from apex_dqn.roles.shard_worker import ShardWorker
from apex_dqn.runtime.local import LocalReplayPort, LocalWeightStore
from tests.unit.learner_helpers import cartpole_batch


def _stats(added: int, instance: int, size: int = 100) -> ReplayStats:
    return ReplayStats(
        size=size,
        capacity=1000,
        priority_sum=float(size),
        priority_min=1.0,
        added=added,
        sampled=0,
        bytes=0,
        instance=instance,
    )


def test_shard_book_counts_a_down_period_once_and_inserts_across_restarts():
    book = ShardBook(2)
    book.answered(0, _stats(100, instance=1))
    book.answered(1, _stats(50, instance=7))
    book.answered(0, _stats(90, instance=1))  # an older report after a newer one: ignored
    assert book.total_added() == 150 and book.stats[0].added == 100
    book.failed(1)
    book.failed(1)
    assert book.failures == 1 and book.down == {1} and book.total_size() == 100
    # Down shards are never picked.
    rng = np.random.default_rng(0)
    assert {book.pick(32, rng) for _ in range(20)} == {0}
    # Shard 1 comes back as a new instance with an empty insert counter: not a stale report.
    book.answered(1, _stats(5, instance=8, size=5))
    assert book.restarts == 1 and not book.down
    assert book.total_added() == 100 + 50 + 5
    assert book.totals(sampled=640).added == 155 and book.totals(sampled=640).sampled == 640


class _Batch:
    def __init__(self, n: int) -> None:
        self.n = n

    def __len__(self) -> int:
        return self.n


class _FakeActor:
    """Makes one batch of 32 per call of 8 vector steps, 4 envs."""

    def __init__(self) -> None:
        self.weights_version = -1
        self.epsilon = 0.25

    def set_weights(self, weights, version: int) -> None:
        self.weights_version = version

    def run_steps(self, num_steps: int, report: ActorReport):
        report.env_steps += 4 * num_steps
        report.transitions += 32
        return [_Batch(32)], report


class _Port:
    """Records pushes; pushes to a shard in ``dead`` fail when they are settled."""

    def __init__(self, num_shards: int, dead: set[int] = frozenset()) -> None:
        self.num_shards = num_shards
        self.dead = set(dead)
        self.pushed_to: list[int] = []

    def add(self, shard: int, batch):
        self.pushed_to.append(shard)
        return (shard, len(self.pushed_to))

    def wait(self, tickets, num_returns, timeout):
        return list(tickets)[:num_returns]

    def result(self, ticket, timeout=None):
        if ticket[0] in self.dead:
            raise ShardDown("gone")
        return 1


def _actor_worker(port, *, ratio: float = 0.0, pending: int = 4, index: int = 1):
    cfg = ActorsConfig(
        num_actors=1,
        envs_per_actor=4,
        steps_per_call=8,
        sync_every=32,
        max_pending_pushes=pending,
        min_replay_ratio=ratio,
    )
    store = LocalWeightStore(ParameterServer())
    throttle = ActorThrottle(
        min_replay_ratio=ratio, samples_per_update=32, min_size_to_learn=128, num_actors=1
    )
    worker = ActorWorker(
        _FakeActor(),
        cfg=cfg,
        index=index,
        replay=port,
        weights=store,
        throttle=throttle,
        max_wait_s=0.0,
    )
    return worker, store


def test_actor_pushes_runs_of_batches_to_one_shard_in_turn():
    port = _Port(3)
    worker, store = _actor_worker(port, index=1)
    store.publish({}, 0)
    for _ in range(20):
        report = worker.run()
        assert report.pushed == 32 and report.env_steps == 32 and report.weights_version == 0
    runs = PUSHES_PER_SHARD
    assert port.pushed_to == [1] * runs + [2] * runs + [0] * (20 - 2 * runs)


def test_actor_counts_pushes_to_a_dead_shard_as_lost():
    port = _Port(2, dead={1})
    worker, store = _actor_worker(port, pending=2, index=0)
    store.publish({}, 0)
    calls = [worker.run() for _ in range(24)]
    # Pushes 9-16 went to shard 1; all but the last two pushes (to shard 0) are settled.
    assert sum(c.lost for c in calls) == 32 * PUSHES_PER_SHARD
    assert worker.lost == 32 * PUSHES_PER_SHARD and worker.pushed == 24 * 32


def test_an_actor_ahead_returns_at_once_without_steps_in_one_process():
    worker, store = _actor_worker(_Port(1), ratio=4.0)
    store.publish({}, 0)
    pushed = sum(worker.run().pushed for _ in range(10))
    assert pushed == 128  # the fill the learner starts at, and not one batch more
    late = worker.run()
    assert late.env_steps == 0 and late.pushed == 0 and late.waited_s == 0.0
    store.publish({}, 40)  # 40 updates of 32 at 4 samples each: 320 more
    pushed += sum(worker.run().pushed for _ in range(20))
    assert pushed == 128 + 320


def _learner_worker(
    shards: int = 1, learner_cls: type = Learner, **learner_overrides
) -> tuple[LearnerWorker, list]:
    cfg = Config(
        actors=ActorsConfig(min_replay_ratio=0.0),
        network=NetworkConfig(hidden_sizes=[16]),
        learner=LearnerConfig(
            device="cpu", batch_size=16, batches_per_request=2, prefetch=2, **learner_overrides
        ),
        replay=ReplayConfig(capacity=4096, min_size_to_learn=64, num_shards=shards),
    )
    info = inspect_env(cfg.env)
    workers = [ShardWorker(build.shard_spec(cfg, info, s, None)) for s in range(shards)]
    store = LocalWeightStore(ParameterServer())
    worker = LearnerWorker(
        learner_cls(**_arguments(build.learner_spec(cfg, info))),
        replay_cfg=cfg.replay,
        replay=LocalReplayPort(workers),
        weights=store,
        seed=0,
    )
    return worker, workers


def _arguments(spec: Any) -> dict[str, Any]:
    """A spec's fields as the keyword arguments of the class it builds (a subclass here)."""
    return {f.name: getattr(spec, f.name) for f in dataclasses.fields(spec)}


class _ThreadStagingLearner(Learner):
    """A CPU learner that stages in the feeder's helper threads, as a CUDA learner does."""

    @property
    def stages_async(self) -> bool:
        return True


def test_threaded_staging_learns_the_same_batches_and_close_ends_its_threads():
    results = []
    for cls in (Learner, _ThreadStagingLearner):
        worker, (shard,) = _learner_worker(learner_cls=cls, max_replay_ratio=2.0)
        shard.add(cartpole_batch(96))
        report = worker.run_for(5.0, until_idle=True)
        results.append((report.updates, worker.weights_digest()))
        worker.close()
    assert results[0] == results[1] and results[0][0] == 12
    assert not [t for t in threading.enumerate() if t.name.startswith("stage")]


def test_learner_waits_for_the_fill_then_keeps_to_the_replay_ratio():
    worker, (shard,) = _learner_worker(max_replay_ratio=2.0)
    shard.add(cartpole_batch(32))
    assert worker.run_for(5.0, until_idle=True).updates == 0  # below min_size_to_learn
    shard.add(cartpole_batch(64, seed=1))
    report = worker.run_for(5.0, until_idle=True)
    # 96 inserts allow 192 samples: 12 updates of 16, drawn in requests of 2 batches.
    assert report.updates == 12 and report.learner_steps == 12
    assert report.replay.added == 96 and report.replay.sampled == 192
    assert report.weights_version == 10  # published every learner.publish_every=10 updates
    shard.add(cartpole_batch(8, seed=2))
    assert worker.run_for(5.0, until_idle=True).updates == 0  # 1 more update needs 8 more
    shard.add(cartpole_batch(8, seed=3))
    assert worker.run_for(5.0, until_idle=True).updates == 2


def test_learner_sends_each_request_s_priorities_back_to_its_shard():
    worker, shards = _learner_worker(shards=2, max_replay_ratio=1.0)
    sampled: dict[int, list] = {0: [], 1: []}
    sent: list[tuple[int, np.ndarray]] = []
    for s, shard in enumerate(shards):
        shard.add(cartpole_batch(64, seed=s))
        sample_many, update = shard.sample_many, shard.update_priorities

        def sample(batch_size, beta, num, _s=s, _f=sample_many):
            samples = _f(batch_size, beta, num)
            sampled[_s].append(np.concatenate([x.ids_B for x in samples]))
            return samples

        def record(ids_B, priorities_B, _s=s, _f=update):
            sent.append((_s, ids_B))
            return _f(ids_B, priorities_B)

        shard.sample_many, shard.update_priorities = sample, record
    report = worker.run_for(5.0, until_idle=True)
    assert report.updates == 8  # 128 inserts at ratio 1: 128 samples
    # One call per request of 2 batches of 16, to the shard the request went to, with the
    # ids that request drew.
    assert len(sent) == 4 and all(len(ids) == 32 for _, ids in sent)
    for s in (0, 1):
        drawn = [ids.tolist() for ids in sampled[s]]
        assert [ids.tolist() for shard, ids in sent if shard == s] == drawn


class _FailingPort(LocalReplayPort):
    """A port whose shard ``down`` fails every call while it is down."""

    def __init__(self, shards, down: int | None) -> None:
        super().__init__(shards)
        self.down = down

    def result(self, ticket, timeout=None):
        if ticket.value == ("down",):
            raise ShardDown("shard down")
        return super().result(ticket, timeout)

    def stats(self, shard):
        return self._fail(shard) or super().stats(shard)

    def sample_many(self, shard, batch_size, beta, num_batches):
        return self._fail(shard) or super().sample_many(shard, batch_size, beta, num_batches)

    def _fail(self, shard):
        from apex_dqn.runtime.local import Done

        return Done(("down",)) if shard == self.down else None


def test_learner_leaves_a_down_shard_out_and_counts_its_return_as_a_restart():
    worker, shards = _learner_worker(shards=2, max_replay_ratio=0.0)
    port = _FailingPort(shards, down=None)
    worker.feeder.replay = port
    for s, shard in enumerate(shards):
        shard.add(cartpole_batch(64, seed=s))
    assert worker.run_for(0.1).replay.shards == 2
    port.down = 1
    report = worker.run_for(0.3)
    assert report.updates > 0 and report.shard_failures == 1 and report.shards_down == 1
    assert report.replay.shards == 1 and report.shard_restarts == 0
    # Shard 1 comes back as a new replay holding 5 transitions: a restart, and its first
    # life's 64 inserts still count.
    cfg = Config(replay=ReplayConfig(capacity=4096, num_shards=2))
    port._shards[1] = ShardWorker(build.shard_spec(cfg, inspect_env(cfg.env), 1, None))
    port._shards[1].add(cartpole_batch(5, seed=9))
    port.down = None
    report = worker.run_for(0.1)
    assert report.shards_down == 0 and report.shard_failures == 1 and report.shard_restarts == 1
    assert report.replay.shards == 2 and report.replay.added == 64 + 64 + 5


class _Round:
    """An all-reduce of (brings a batch, wants to stop) among threads, like group_step's."""

    def __init__(self, n: int) -> None:
        self.barrier = threading.Barrier(n)
        self.lock = threading.Lock()
        self.votes: list[tuple[int, int]] = []
        self.result: tuple[int, int] | None = None

    def vote(self, brings: bool, stop: bool) -> tuple[int, int]:
        with self.lock:
            self.votes.append((int(brings), int(stop)))
        if self.barrier.wait() == 0:
            self.result = tuple(map(sum, zip(*self.votes, strict=True)))  # type: ignore[assignment]
            self.votes = []
        self.barrier.wait()
        assert self.result is not None
        return self.result


class _GroupLearner:
    """A Learner and LearnerGroup stand-in whose round votes like the real one and counts
    updates."""

    def __init__(self, real: Learner, round_: _Round) -> None:
        self.real = real
        self._votes = round_
        self.cfg = real.cfg
        self.stages_async = False
        self.learner_steps = 0
        self.skipped_updates = 0
        self.brought = 0

    def beta(self) -> float:
        return 0.4

    def stage(self, batch, weights_B):
        return len(batch)

    def get_weights(self):
        return {}

    def round(self, staged, stop: bool):
        contributors, stops = self._votes.vote(staged is not None, stop)
        if contributors:
            self.learner_steps += 1
        if staged is None:
            return None, stops > 0
        self.brought += 1
        metrics = LearnerMetrics(
            loss=0.0, mean_abs_td=0.0, mean_q=0.0, max_q=0.0, grad_norm=0.0, beta=0.4, skipped=False
        )
        return StepResult(metrics, np.ones(staged, np.float32)), stops > 0


def test_learners_of_a_group_end_every_call_at_the_same_update():
    round_ = _Round(2)
    workers = []
    for rank in range(2):
        worker, shards = _learner_worker(num_learners=2, max_replay_ratio=0.0)
        fake = _GroupLearner(worker.learner, round_)
        worker.learner = worker.group = worker.feeder.learner = fake
        worker.rank = rank
        if rank == 0:
            shards[0].add(cartpole_batch(128))  # only rank 0 has data: rank 1 brings nothing
        workers.append(worker)
    reports: list = [None, None]

    def call(rank: int, seconds: float) -> None:
        reports[rank] = workers[rank].run_for(seconds)

    threads = [threading.Thread(target=call, args=(r, 0.05 + 0.2 * r)) for r in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)
    assert all(r is not None for r in reports)
    # Rank 0's shorter call ended the round for both: the same update count on each.
    assert reports[0].learner_steps == reports[1].learner_steps > 0
    assert workers[0].learner.brought == reports[0].learner_steps
    assert workers[1].learner.brought == 0 and reports[1].batches_learned == 0


@pytest.mark.parametrize("ratio", [0.5, 3.0])
def test_learner_worker_ratio_holds_for_other_ratios(ratio):
    worker, (shard,) = _learner_worker(max_replay_ratio=ratio)
    shard.add(cartpole_batch(256))
    report = worker.run_for(5.0, until_idle=True)
    assert report.replay.sampled <= ratio * 256
    assert report.replay.sampled > ratio * 256 - 2 * 16 * 2  # within one request of it
