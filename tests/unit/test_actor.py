"""The Actor: lock-step vector envs, epsilon, push batches and local initial priorities."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from apex_dqn.actor import Actor
from apex_dqn.config import ActorsConfig, Config, EnvConfig
from apex_dqn.envs import inspect_env
from apex_dqn.networks import build_q_network, get_weights
from apex_dqn.runtime import common
from apex_dqn.types import TransitionBatch


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
    return Actor(**common.actor_kwargs(cfg, info, index)), cfg


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
        assert np.all(b.epsilon_B == np.float32(actor.epsilon))


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
