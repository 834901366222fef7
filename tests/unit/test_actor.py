"""The Actor: lock-step vector envs, epsilon, push batches and local initial priorities."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from apex_dqn.algo.actor import Actor
from apex_dqn.algo.networks import build_q_network, get_weights
from apex_dqn.config import ActorsConfig, Config, EnvConfig, LearnerConfig
from apex_dqn.core.types import BEHAVIOUR_FIELDS, TransitionBatch
from apex_dqn.envs.factory import inspect_env
from apex_dqn.roles import build


def _actor(
    index: int = 0, max_episode_steps: int | None = None, **actor_overrides
) -> tuple[Actor, Config]:
    cfg = Config(
        env=EnvConfig(max_episode_steps=max_episode_steps),
        actors=ActorsConfig(
            **{"num_actors": 4, "envs_per_actor": 4, "push_every": 32, **actor_overrides}
        ),
    )
    info = inspect_env(cfg.env)
    actor = build.actor_spec(cfg, info, index).build()
    assert isinstance(actor, Actor)
    return actor, cfg


@pytest.mark.parametrize(("index", "expected"), [(0, 0.4), (3, 0.4**8)])
def test_epsilon_follows_apex_schedule(index, expected):
    actor, _ = _actor(index)
    assert actor.epsilon == pytest.approx(expected)


def test_run_steps_pushes_full_batches_and_counts_steps():
    actor, _ = _actor()
    batches, report = actor.run_steps(50)
    assert report.env_steps == 200 and actor.env_steps == 200
    assert all(len(b) == 32 for b in batches)
    # Everything produced is either pushed or still buffered for the next call.
    assert report.transitions == 32 * len(batches) + actor._pending_count
    assert actor._pending_count < 32
    lengths = report.episode_lengths
    # CartPole pays +1 per step, so returns equal lengths.
    assert lengths and sum(report.episode_returns) == pytest.approx(sum(lengths))
    for b in batches:
        assert b.obs_B.shape == (32, 4) and b.action_B.dtype == np.int64
        assert np.all(b.priority_B >= 0) and np.all(np.isfinite(b.priority_B))
        # learner.actor_correction is off: the fields it would need do not travel.
        assert not b.has_behaviour and set(b.arrays()).isdisjoint(BEHAVIOUR_FIELDS)


def test_with_the_actor_correction_on_pushes_carry_the_behaviour_fields():
    cfg = Config(
        actors=ActorsConfig(num_actors=4, envs_per_actor=4, push_every=32),
        learner=LearnerConfig(actor_correction=True),
    )
    info = inspect_env(cfg.env)
    actor = build.actor_spec(cfg, info, 1).build()
    batches, _ = actor.run_steps(50)
    replay = build.shard_spec(cfg, info, 0, None).build()
    plain = build.shard_spec(Config(), info, 0, None).build()
    for b in batches:
        assert set(b.arrays()) >= set(BEHAVIOUR_FIELDS)
        assert np.all(b.epsilon_B == np.float32(actor.epsilon))
        replay.add(b)
        with pytest.raises(ValueError, match="actor_correction"):
            plain.add(b)  # a shard built without the option refuses them, loses nothing
    assert set(replay.sample(8, beta=0.4).batch.arrays()) >= set(BEHAVIOUR_FIELDS)


@pytest.mark.parametrize("max_episode_steps", [None, 7])
def test_initial_priorities_are_td_errors_of_the_actor_network(max_episode_steps):
    # The actor reuses its acting Q-values; with a 7-step time limit many windows end in a
    # truncation, whose final observation needs its own forward pass.
    actor, cfg = _actor(max_episode_steps=max_episode_steps)
    info = inspect_env(cfg.env)
    net = build_q_network(cfg.network, obs_shape=info.obs_shape, num_actions=info.num_actions)
    actor.set_weights(get_weights(net), version=7)
    assert actor.weights_version == 7
    batches, _ = actor.run_steps(40)
    b = TransitionBatch.concatenate(batches)
    if max_episode_steps is not None:
        assert (~b.done_B & (b.discount_B > cfg.algo.gamma**cfg.algo.n_step + 1e-6)).any()
    with torch.no_grad():
        q = net(torch.as_tensor(b.obs_B)).numpy()
        q_next = net(torch.as_tensor(b.next_obs_B)).numpy()
    bootstrap = q_next[np.arange(len(b)), q_next.argmax(1)]
    target = b.return_B + (1 - b.done_B) * b.discount_B * bootstrap
    expected = np.abs(target - q[np.arange(len(b)), b.action_B])
    np.testing.assert_allclose(b.priority_B, expected, rtol=1e-5, atol=1e-6)


def test_same_seed_same_data():
    a1, _ = _actor()
    a2, _ = _actor()
    b1, _ = a1.run_steps(20)
    b2, _ = a2.run_steps(20)
    np.testing.assert_array_equal(b1[0].action_B, b2[0].action_B)
    np.testing.assert_array_equal(b1[0].obs_B, b2[0].obs_B)


@pytest.mark.parametrize("torso", ["mlp", "nature"])
def test_pipelined_actor_equals_its_two_lanes_stepped_one_after_the_other(torso):
    """The pipeline (one lane's forward pass in a helper thread while the other lane steps)
    changes when work happens, not what it produces: each lane's transitions, priorities and
    episodes equal those of a plain Actor with the lane's envs and seed."""
    import dataclasses

    from apex_dqn.algo.actor import PipelinedActor
    from apex_dqn.config import AtariConfig, NetworkConfig

    env = EnvConfig(id="ALE/Breakout-v5", atari=AtariConfig()) if torso == "nature" else EnvConfig()
    cfg = Config(
        env=env,
        network=NetworkConfig(torso=torso),
        actors=ActorsConfig(num_actors=2, envs_per_actor=5, push_every=16, pipeline=True),
    )
    info = inspect_env(cfg.env)
    spec = build.actor_spec(cfg, info, 1)
    piped = spec.build()
    assert isinstance(piped, PipelinedActor)
    net = build_q_network(cfg.network, obs_shape=info.obs_shape, num_actions=info.num_actions)
    piped.set_weights(get_weights(net), version=3)
    lanes = []
    for lane, size in zip(piped.lanes, (3, 2), strict=True):
        assert len(lane._obs_N) == size
        lane_actors = dataclasses.replace(cfg.actors, envs_per_actor=size, pipeline=False)
        plain = dataclasses.replace(spec, actors=lane_actors, seed=lane._seed).build()
        plain.set_weights(get_weights(net), version=3)
        lanes.append(plain)
    steps = 40 if torso == "mlp" else 12
    batches, report = piped.run_steps(steps)
    expected = []
    returns = []
    for plain in lanes:
        lane_batches, lane_report = plain.run_steps(steps)
        expected += lane_batches
        returns += lane_report.episode_returns
    assert batches and len(batches) == len(expected)
    assert report.env_steps == 5 * steps and report.weights_version == 3
    assert sorted(report.episode_returns) == sorted(returns)
    for got, want in zip(batches, expected, strict=True):
        got_t = got.to_transitions() if hasattr(got, "to_transitions") else got
        want_t = want.to_transitions() if hasattr(want, "to_transitions") else want
        np.testing.assert_array_equal(got_t.obs_B, want_t.obs_B)
        np.testing.assert_array_equal(got_t.next_obs_B, want_t.next_obs_B)
        np.testing.assert_array_equal(got_t.action_B, want_t.action_B)
        np.testing.assert_allclose(got_t.priority_B, want_t.priority_B, rtol=1e-6)
        np.testing.assert_array_equal(got_t.return_B, want_t.return_B)
    piped.close()


def test_pipeline_needs_two_envs():
    from apex_dqn.config import ConfigError

    with pytest.raises(
        ConfigError, match=r"actors\.pipeline=true needs actors\.envs_per_actor >= 2"
    ):
        ActorsConfig(envs_per_actor=1, pipeline=True)
