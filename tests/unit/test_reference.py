"""The reference loop as an oracle: its transitions are the real actors' and the local
runtime's, its update is the learner's, its updates stop at the replay-ratio cap, and it learns
CartPole."""

from __future__ import annotations

import copy
from pathlib import Path

import numpy as np
import pytest
import torch

from apex_dqn.algo.networks import build_q_network, get_weights, set_weights
from apex_dqn.algo.reference import importance_weights_of, reference_update, run_reference
from apex_dqn.config import (
    ActorsConfig,
    AlgoConfig,
    AtariConfig,
    Config,
    EnvConfig,
    EvalConfig,
    LearnerConfig,
    NetworkConfig,
    ReplayConfig,
)
from apex_dqn.core.types import TransitionBatch
from apex_dqn.envs.factory import inspect_env
from apex_dqn.replay import PrioritizedReplay
from apex_dqn.roles import build
from apex_dqn.runtime.local import LocalRuntime

# A small run: 2 actors of 2 envs, 16 steps per call, a pull every 4 vector steps.
SMALL = {
    "network": NetworkConfig(hidden_sizes=[32, 32]),
    "actors": ActorsConfig(
        num_actors=2,
        envs_per_actor=2,
        steps_per_call=16,
        sync_every=8,
        push_every=8,
        min_replay_ratio=0,
    ),
    "replay": ReplayConfig(capacity=2000, min_size_to_learn=64),
    "learner": LearnerConfig(
        device="cpu", batch_size=32, max_replay_ratio=4, publish_every=3, target_update_period=10
    ),
}


def _config(**sections) -> Config:
    """``SMALL`` with ``sections`` replaced, without evaluation."""
    return Config(**{**SMALL, **sections}, eval=EvalConfig(enabled=False), runtime="local")


def _assert_same_transitions(got: dict[str, np.ndarray], want: TransitionBatch) -> None:
    """Every field equal; priorities to float rounding (the actor takes a truncated episode's
    bootstrap value from a forward pass of another batch size)."""
    assert len(got["action_B"]) == len(want) > 0
    for name, array in want.arrays().items():
        if name == "priority_B":
            np.testing.assert_allclose(got[name], array, rtol=1e-5, atol=1e-6)
        else:
            np.testing.assert_array_equal(got[name], array, err_msg=name)


ATARI = EnvConfig(  # small frames and stacks: a cheaper nature torso
    id="ALE/Breakout-v5", max_episode_steps=60, atari=AtariConfig(screen_size=44, frame_stack=2)
)
MINATAR = EnvConfig(id="MinAtar/Breakout-v1", max_episode_steps=40)


@pytest.mark.parametrize(
    ("env", "torso", "envs", "steps"),
    [
        (EnvConfig(max_episode_steps=12), "mlp", 3, 20),  # terminations and truncations
        (MINATAR, "minatar", 3, 12),
        (ATARI, "nature", 2, 32),  # lives lost: terminal for training
    ],
    ids=["cartpole", "minatar", "atari"],
)
def test_transitions_and_priorities_equal_the_actors(env, torso, envs, steps):
    """Before learning starts (the weights stay the initial ones), the reference loop's
    replay holds exactly what real actors with the same seeds push, in push order, and the
    training episodes' returns are theirs."""
    if env.atari is not None:
        pytest.importorskip("ale_py")
    if env.id.startswith("MinAtar/"):
        pytest.importorskip("minatar")
    actors = ActorsConfig(num_actors=2, envs_per_actor=envs, steps_per_call=steps, push_every=16)
    rounds = 2
    total = rounds * 2 * envs * steps  # env steps, more than the transitions: no wrap-around
    cfg = _config(
        env=env,
        network=NetworkConfig(torso=torso, hidden_sizes=[32, 32]),
        algo=AlgoConfig(n_step=3),
        actors=actors,
        replay=ReplayConfig(capacity=total, min_size_to_learn=total),  # never reached
        learner=LearnerConfig(device="cpu", batch_size=32),
    )
    result = run_reference(cfg, total_steps=total)
    assert result.learner_steps == 0 and result.env_steps == total

    info = inspect_env(cfg.env)
    weights = build.learner_spec(cfg, info).build().get_weights()
    real = [build.actor_spec(cfg, info, i).build() for i in range(2)]
    pushed, returns = [], []
    for actor in real:
        actor.set_weights(weights, version=0)
    for _ in range(rounds):
        for actor in real:
            batches, report = actor.run_steps(steps)
            pushed += [b.to_transitions() if hasattr(b, "to_transitions") else b for b in batches]
            returns += report.episode_returns
    for actor in real:
        actor.close()
    want = TransitionBatch.concatenate(pushed)
    assert result.transitions == len(want)
    _assert_same_transitions(result.replay.state_dict()["storage"], want)
    assert result.episode_returns == returns
    if torso == "nature":
        assert want.done_B.any()  # lives lost: games end only by the 60-step truncation
    if torso == "mlp":
        # Independent of both sides (they share NStepBuilder): CartPole pays 1 per step, so an
        # m-step return is sum_{k<m} gamma^k = (1 - gamma^m) / (1 - gamma), with the bootstrap
        # discount gamma^m, 1 <= m <= 3.
        gamma = cfg.algo.gamma
        m_B = np.rint(np.log(want.discount_B.astype(np.float64)) / np.log(gamma))
        assert set(m_B) == {1, 2, 3}
        np.testing.assert_allclose(want.discount_B, gamma**m_B, rtol=1e-6)
        np.testing.assert_allclose(want.return_B, (1 - gamma**m_B) / (1 - gamma), rtol=1e-6)
        # Both episode ends: terminations, and truncations (m < 3 with no termination).
        assert want.done_B.any() and (~want.done_B & (m_B < 3)).any()


def test_the_local_runtime_s_roles_store_what_the_reference_stores():
    """Actor workers pushing through the local runtime's ports into a shard worker store the
    reference loop's transitions in its order: pulls, pushes and the shard path change
    nothing. Learning is left out: the runtimes keep sample requests in flight (a batch is
    drawn before the previous one's priorities are back), the reference does not."""
    never = ReplayConfig(capacity=2000, min_size_to_learn=2000)  # learning never starts
    cfg = _config(env=EnvConfig(max_episode_steps=16), replay=never)  # also truncations
    rounds = 4
    steps = rounds * 2 * 2 * 16
    result = run_reference(cfg, total_steps=steps)
    assert result.learner_steps == 0

    info = inspect_env(cfg.env)
    runtime = LocalRuntime(cfg, info, Path("."), resumes=0)
    for _ in range(rounds):
        for index in range(cfg.actors.num_actors):
            runtime.result(runtime.call_actor(index))
    runtime.stop_actors()
    stored = runtime.shards[0].replay.state_dict()
    assert stored["added"] == result.transitions > 0
    _assert_same_transitions(
        result.replay.state_dict()["storage"], TransitionBatch(**stored["storage"])
    )
    assert (~TransitionBatch(**stored["storage"]).done_B).any()


@pytest.mark.parametrize(
    ("algo", "learner"),
    [
        # Double Q, hard target copies after updates 2 and 4, a gradient clipped to norm 0.05.
        (AlgoConfig(), {"grad_clip": 0.05, "target_update_period": 2}),
        # max_a Q_target, Polyak averaging, no clipping, other Huber and Adam settings.
        (
            AlgoConfig(double_q=False, gamma=0.9),
            {"grad_clip": 0, "target_update_tau": 0.3, "huber_delta": 0.5, "adam_eps": 1e-4},
        ),
    ],
    ids=["double-q-hard-copy", "max-q-polyak"],
)
def test_the_reference_update_is_the_learner_s(algo, learner):
    """The reference starts from the learner's initial weights, and from there, on the same
    prioritized batches with the same (unequal) importance weights, ``reference_update`` and
    ``Learner.step`` give the same loss, mean Q, new priorities, online and target weights, bit
    for bit, update after update. Both run torch's fused Adam on the CPU; the learner's is
    ``dynamo_free_adam``'s step unless TorchDynamo was loaded before it was built (the
    reference's ``torch.optim.Adam`` loads it), as when this test runs alone."""
    never = ReplayConfig(capacity=2000, min_size_to_learn=2000)  # learning never starts
    learner = LearnerConfig(device="cpu", batch_size=32, **learner)
    cfg = _config(env=EnvConfig(max_episode_steps=12), algo=algo, learner=learner, replay=never)
    info = inspect_env(cfg.env)
    real = build.learner_spec(cfg, info).build()
    result = run_reference(cfg, total_steps=512)  # terminations and truncations
    assert result.learner_steps == 0
    for name, array in real.get_weights().items():
        np.testing.assert_array_equal(result.weights[name], array, err_msg=name)
    online = build_q_network(cfg.network, obs_shape=info.obs_shape, num_actions=info.num_actions)
    set_weights(online, result.weights)
    target = copy.deepcopy(online).requires_grad_(False)
    optimizer = torch.optim.Adam(
        online.parameters(), lr=learner.lr, eps=learner.adam_eps, fused=True
    )
    replay = result.replay
    initial = get_weights(target)
    for step in range(5):
        sample = replay.sample(32, beta=0.5 + 0.1 * step)
        assert len(np.unique(sample.weights_B)) > 8 and sample.batch.done_B.any()
        loss, mean_q, priorities_B = reference_update(
            online, target, optimizer, sample.batch, sample.weights_B, cfg, step
        )
        metrics, want_B = real.step(real.stage(sample.batch, sample.weights_B))
        assert (loss, mean_q) == (metrics.loss, metrics.mean_q)
        np.testing.assert_array_equal(priorities_B, want_B)
        for mine, theirs in [(online, real.online), (target, real.target)]:
            want = get_weights(theirs)
            for name, array in get_weights(mine).items():
                np.testing.assert_array_equal(array, want[name], err_msg=f"update {step}: {name}")
        replay.update_priorities(sample.ids_B, priorities_B)
    assert all(not np.array_equal(initial[k], v) for k, v in get_weights(target).items())


@pytest.mark.parametrize("beta", [0.0, 0.4, 1.0])
def test_the_importance_weights_written_out_are_the_replay_s(beta):
    replay = PrioritizedReplay(capacity=64, obs_shape=(1,), alpha=0.6, seed=0)
    rng = np.random.default_rng(0)
    n = 50
    replay.add(
        TransitionBatch(
            obs_B=np.zeros((n, 1), np.float32),
            action_B=np.zeros(n, np.int64),
            return_B=np.zeros(n, np.float32),
            discount_B=np.ones(n, np.float32),
            next_obs_B=np.zeros((n, 1), np.float32),
            done_B=np.zeros(n, bool),
            priority_B=rng.uniform(0.01, 3.0, n).astype(np.float32),
        )
    )
    sample = replay.sample(32, beta)
    np.testing.assert_allclose(importance_weights_of(sample, beta), sample.weights_B, rtol=1e-5)


@pytest.mark.parametrize("ratio", [0.5, 2.0])
def test_updates_stop_at_the_replay_ratio(ratio):
    """The learner draws as many batches as the cap allows and no more (the last round's
    learning stops at the cap): learner_steps * batch <= ratio * inserted < one batch more."""
    learner = LearnerConfig(device="cpu", batch_size=32, max_replay_ratio=ratio)
    cfg = _config(learner=learner)
    result = run_reference(cfg, total_steps=1000)
    drawn = result.learner_steps * 32
    assert result.learner_steps > 0
    assert drawn <= ratio * result.transitions < drawn + 32
    stats = result.replay.stats()
    assert (stats.sampled, stats.added) == (drawn, result.transitions)
    assert len(result.losses) == len(result.mean_q) == result.learner_steps


def test_needs_a_replay_ratio():
    cfg = _config(learner=LearnerConfig(device="cpu", batch_size=32, max_replay_ratio=0))
    with pytest.raises(ValueError, match="max_replay_ratio"):
        run_reference(cfg, total_steps=100)


def test_learns_cartpole():
    """The default config, learning from 500 transitions on: after 8192 env steps (960
    updates, 2 to 3 s of CPU) the greedy policy balances several times longer than the
    untrained one (9 to 10 steps; seeds 0 to 2 gave 51 to 500), training episodes lengthen,
    and Q-values rise toward the returns."""
    cfg = Config(
        replay=ReplayConfig(min_size_to_learn=500),
        learner=LearnerConfig(device="cpu"),
        eval=EvalConfig(episodes=5),
    )
    result = run_reference(cfg, total_steps=8000)
    assert result.env_steps == 8192 and result.learner_steps > 500
    assert np.mean(result.eval_returns) >= 40
    early, late = result.episode_returns[:20], result.episode_returns[-20:]
    assert np.mean(late) > 2 * np.mean(early)
    mean_q = result.mean_q
    assert np.mean(mean_q[-50:]) > 3 * np.mean(mean_q[:50]) > 0
