"""actors.min_replay_ratio: an actor ahead of the learner waits, and keeps waiting, in real Ray."""

from __future__ import annotations

import time

import pytest
import ray

from apex_dqn.algo.networks import build_q_network, get_weights
from apex_dqn.config import ActorsConfig, Config, LearnerConfig, ReplayConfig
from apex_dqn.envs.factory import inspect_env
from apex_dqn.roles import build
from apex_dqn.roles.parameter_server import ParameterServer
from apex_dqn.runtime.hosts import ActorHost, Peers, ReplayShardHost

pytestmark = pytest.mark.ray

NAMESPACE = "apex-dqn-throttle-test"
MIN_SIZE, BATCH, RATIO = 128, 32, 4.0
# One chunk of vector steps (steps_per_call 16 x 4 envs) plus one unpushed batch: how far past
# its allowance an actor can get between two checks.
SLACK = 16 * 4 + 32


@pytest.fixture
def hosts(request):
    ray.init(num_cpus=2, include_dashboard=False, namespace=NAMESPACE, log_to_driver=False)
    cfg = Config(
        actors=ActorsConfig(
            num_actors=1,
            envs_per_actor=4,
            push_every=32,
            steps_per_call=16,
            sync_every=64,
            min_replay_ratio=RATIO,
            num_cpus=0.1,
            nice=0,
        ),
        replay=ReplayConfig(min_size_to_learn=MIN_SIZE, num_cpus=0.1),
        learner=LearnerConfig(batch_size=BATCH),
    )
    info = inspect_env(cfg.env)
    peers = Peers(parameter_server="ps", shards=("shard0",), namespace=NAMESPACE)
    ps = ray.remote(num_cpus=0)(ParameterServer).options(name="ps").remote()
    shard = (
        ray.remote(num_cpus=0.1)(ReplayShardHost)
        .options(name="shard0")
        .remote(spec=build.shard_spec(cfg, info, 0, None))
    )
    actor = (
        ray.remote(num_cpus=0.1)(ActorHost)
        .options(name="actor0")
        .remote(
            spec=build.actor_spec(cfg, info, 0),
            peers=peers,
            num_cpus=0.1,
            batch_size=BATCH,
            min_size_to_learn=MIN_SIZE,
            throttle_stall_s=getattr(request, "param", 30.0),
        )
    )
    net = build_q_network(cfg.network, obs_shape=info.obs_shape, num_actions=info.num_actions)
    weights = get_weights(net)

    def publish(version: int, force: bool = False) -> None:
        ray.get(ps.publish.remote([ray.put(weights)], version, force))

    try:
        yield actor, shard, publish
    finally:
        ray.shutdown()


def _calls(actor, n: int) -> list[dict]:
    return [ray.get(actor.run.remote(), timeout=60) for _ in range(n)]


def _pushed(actor, n: int) -> int:
    return sum(r.pushed for r in _calls(actor, n))


def _added(shard, expected: int) -> int:
    """The shard's count of added transitions once the actor's last pushes have landed."""
    deadline = time.monotonic() + 10
    while (added := ray.get(shard.stats.remote()).added) != expected:
        if time.monotonic() > deadline:
            break
        time.sleep(0.05)
    return added


def test_an_actor_ahead_of_the_learner_waits_for_it(hosts):
    actor, shard, publish = hosts
    publish(0)  # a learner that has made no update yet: only the warm-up fill is allowed
    reports = _calls(actor, 6)
    pushed = sum(r.pushed for r in reports)
    assert MIN_SIZE - 32 <= pushed <= MIN_SIZE + SLACK
    # Once ahead, a call waits about a second and returns without stepping (it used to step
    # on after that second, so the actors outran a slow learner without bound).
    start = time.monotonic()
    (late,) = _calls(actor, 1)
    assert late.env_steps == 0 and late.pushed == 0
    assert 0.9 <= time.monotonic() - start < 10 and late.seconds["throttled"] > 0.5
    # The learner's progress lets it go on by exactly what the ratio allows.
    publish(40)  # 40 updates of 32 samples: 320 more transitions at 4 samples each
    reports = _calls(actor, 6)
    pushed += sum(r.pushed for r in reports)
    allowed = MIN_SIZE + 40 * BATCH / RATIO
    assert allowed - 32 <= pushed <= allowed + SLACK
    assert _added(shard, pushed) == pushed


def test_a_learner_restored_to_an_older_version_does_not_stall_the_actor(hosts):
    """A learner restored from an older checkpoint publishes an older version: the actor
    counts itself caught up there, and goes on as the learner makes updates again."""
    actor, _, publish = hosts
    publish(40)
    pushed = _pushed(actor, 8)
    assert pushed >= MIN_SIZE + 40 * BATCH / RATIO - 32
    # A restored learner publishes its older version with force: 30 updates back, the actor
    # would stay 240 transitions ahead without recalibration.
    publish(10, force=True)
    _calls(actor, 1)  # the actor sees the old version
    publish(20)
    more = _pushed(actor, 4)
    assert 10 * BATCH / RATIO - 32 <= more <= 10 * BATCH / RATIO + SLACK


@pytest.mark.parametrize("hosts", [2.0], indirect=True)
def test_a_stalled_learner_gets_a_chunk_from_a_throttled_actor(hosts):
    """Liveness: an actor ahead of a learner that publishes nothing new for the stall time
    (2 s here) steps one chunk anyway, once per stall time."""
    actor, _, publish = hosts
    publish(0)
    _calls(actor, 4)  # the warm-up allowance, then ahead
    start = time.monotonic()
    pushed = 0
    while time.monotonic() - start < 5:
        pushed += _pushed(actor, 1)
    assert 32 <= pushed <= 3 * SLACK  # one or two chunks in 5 s, not a call per second
