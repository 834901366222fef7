"""Golden tests for n-step transition building over lock-stepped vector envs."""

from __future__ import annotations

import numpy as np
import pytest

from apex_dqn.algo.nstep import NStepBuilder
from apex_dqn.core.types import TransitionBatch

GAMMA = 0.9


def _step(
    builder: NStepBuilder,
    t: int,
    *,
    rewards: list[float],
    terminated: list[bool] | None = None,
    truncated: list[bool] | None = None,
    next_obs: list[float] | None = None,
    epsilon: float = 0.1,
    greedy: list[bool] | None = None,
) -> TransitionBatch:
    """One step of len(rewards) envs whose obs encode (env, t) as 100 * env + t."""
    num = len(rewards)
    envs = np.arange(num)
    obs_N1 = (100.0 * envs + t)[:, None].astype(np.float32)
    nxt = (100.0 * envs + t + 1) if next_obs is None else np.asarray(next_obs)
    return builder.step(
        obs_N=obs_N1,
        action_N=(envs + t) % 4,
        reward_N=np.asarray(rewards, dtype=np.float32),
        next_obs_N=nxt[:, None].astype(np.float32),
        terminated_N=np.asarray(terminated or [False] * num),
        truncated_N=np.asarray(truncated or [False] * num),
        greedy_N=(envs + t) % 2 == 0 if greedy is None else np.asarray(greedy),
        epsilon=epsilon,
    )


def test_golden_three_step_returns() -> None:
    builder = NStepBuilder(behaviour=True, num_envs=1, n=3, gamma=GAMMA, obs_shape=(1,))
    rewards = [1.0, 2.0, 3.0, 4.0]
    out = [_step(builder, t, rewards=[r]) for t, r in enumerate(rewards)]
    assert [len(b) for b in out] == [0, 0, 1, 1]
    assert builder.pending() == 2
    # 1 + 0.9 * 2 + 0.81 * 3 = 5.23 ; 2 + 0.9 * 3 + 0.81 * 4 = 7.94
    np.testing.assert_allclose(out[2].return_B, [5.23], rtol=1e-6)
    np.testing.assert_allclose(out[3].return_B, [7.94], rtol=1e-6)
    b = out[3]
    assert b.obs_B[0, 0] == 1.0
    assert b.next_obs_B[0, 0] == 4.0
    assert b.action_B[0] == 1
    assert not b.greedy_B[0]
    np.testing.assert_allclose(b.discount_B, [0.729], rtol=1e-6)
    assert not b.done_B[0]
    assert b.priority_B[0] == 0.0
    np.testing.assert_allclose(b.epsilon_B, [0.1])
    assert b.return_B.dtype == np.float32
    assert b.action_B.dtype == np.int64
    assert b.steps_B.dtype == np.uint8 and b.later_greedy_B.dtype == np.uint8


@pytest.mark.parametrize(("terminated", "done"), [(True, True), (False, False)])
def test_episode_end_flushes_shorter_transitions(terminated: bool, done: bool) -> None:
    builder = NStepBuilder(behaviour=True, num_envs=1, n=3, gamma=GAMMA, obs_shape=(1,))
    _step(builder, 0, rewards=[1.0])
    end = _step(
        builder,
        1,
        rewards=[2.0],
        terminated=[terminated],
        truncated=[not terminated],
        next_obs=[77.0],
    )
    assert len(end) == 2
    # start 0: 1 + 0.9 * 2 = 2.8 over m = 2; start 1: 2 over m = 1
    np.testing.assert_allclose(end.return_B, [2.8, 2.0], rtol=1e-6)
    np.testing.assert_allclose(end.discount_B, [0.81, 0.9], rtol=1e-6)
    np.testing.assert_array_equal(end.done_B, [done, done])
    np.testing.assert_array_equal(end.obs_B[:, 0], [0.0, 1.0])
    np.testing.assert_array_equal(end.next_obs_B[:, 0], [77.0, 77.0])
    assert builder.pending() == 0


def test_episode_end_with_full_window_flushes_all_n() -> None:
    builder = NStepBuilder(behaviour=True, num_envs=1, n=2, gamma=GAMMA, obs_shape=(1,))
    assert len(_step(builder, 0, rewards=[1.0])) == 0
    end = _step(builder, 1, rewards=[2.0], terminated=[True])
    # The full window still does not bootstrap: its episode terminated within n steps.
    np.testing.assert_allclose(end.return_B, [2.8, 2.0], rtol=1e-6)
    np.testing.assert_allclose(end.discount_B, [0.81, 0.9], rtol=1e-6)
    np.testing.assert_array_equal(end.done_B, [True, True])


def test_three_envs_ending_at_different_steps_never_mix() -> None:
    builder = NStepBuilder(behaviour=True, num_envs=3, n=3, gamma=GAMMA, obs_shape=(1,))
    # Env e gets reward 10 * e + t; env 0 terminates at t=1, env 1 truncates at t=3, env 2 runs.
    term = {1: [True, False, False]}
    trunc = {3: [False, True, False]}
    rows: list[TransitionBatch] = []
    for t in range(6):
        rows.append(
            _step(
                builder,
                t,
                rewards=[10.0 * e + t for e in range(3)],
                terminated=term.get(t),
                truncated=trunc.get(t),
            )
        )
    batch = TransitionBatch.concatenate(rows)
    start_obs = batch.obs_B[:, 0]
    env_B = (start_obs // 100).astype(int)
    t_B = start_obs % 100
    m_B = np.rint(np.log(batch.discount_B) / np.log(GAMMA)).astype(int)
    for i in range(len(batch)):
        # Every row's rewards and next obs come from its own env and its own episode.
        e, t, m = env_B[i], t_B[i], m_B[i]
        expected = sum(GAMMA**k * (10.0 * e + t + k) for k in range(m))
        np.testing.assert_allclose(batch.return_B[i], expected, rtol=1e-6)
        assert batch.next_obs_B[i, 0] == 100 * e + t + m
    # env 0: flush t0,t1 at t1 (m 2,1), then t2 starts a new episode: t2,t3 full by t4,t5.
    np.testing.assert_array_equal(t_B[env_B == 0], [0, 1, 2, 3])
    np.testing.assert_array_equal(m_B[env_B == 0], [2, 1, 3, 3])
    np.testing.assert_array_equal(batch.done_B[env_B == 0], [True, True, False, False])
    # env 1: t0 full at t2; the truncation at t3 flushes t1 (still m 3), t2 and t3, bootstrapping.
    np.testing.assert_array_equal(t_B[env_B == 1], [0, 1, 2, 3])
    np.testing.assert_array_equal(m_B[env_B == 1], [3, 3, 2, 1])
    assert not batch.done_B[env_B == 1].any()
    np.testing.assert_array_equal(t_B[env_B == 2], [0, 1, 2, 3])
    assert builder.pending() == 2 + 2 + 2


def test_steps_and_later_greedy_counts() -> None:
    """m and the greedy actions among a_{t+1} .. a_{t+m-1} (never a_t itself), 2 envs, n = 3."""
    builder = NStepBuilder(behaviour=True, num_envs=2, n=3, gamma=GAMMA, obs_shape=(1,))
    # Whether a_t was greedy, [env 0, env 1] per step t.
    greedy = {0: [True, False], 1: [False, True], 2: [True, True], 3: [True, False]}
    out = [_step(builder, t, rewards=[1.0, 1.0], greedy=greedy[t]) for t in range(3)]
    assert [len(b) for b in out] == [0, 0, 2]
    # Full windows of start t=0: env 0 later actions (F, T) -> 1; env 1 (T, T) -> 2.
    np.testing.assert_array_equal(out[2].steps_B, [3, 3])
    np.testing.assert_array_equal(out[2].later_greedy_B, [1, 2])
    # t=3: env 1 terminates. Env 0's full window of t=1: (T, T) -> 2. Env 1 flushes t=1, 2, 3
    # with m = 3, 2, 1: t=1 has (T, F) -> 1 (its own greedy a_1 not counted), t=2 has (F,) -> 0.
    end = _step(builder, 3, rewards=[1.0, 1.0], terminated=[False, True], greedy=greedy[3])
    np.testing.assert_array_equal(end.obs_B[:, 0], [1.0, 101.0, 102.0, 103.0])
    np.testing.assert_array_equal(end.steps_B, [3, 3, 2, 1])
    np.testing.assert_array_equal(end.later_greedy_B, [2, 1, 0, 0])
    # t=4: env 0 truncates and flushes t=2, 3, 4 (m = 3, 2, 1): (T, F) -> 1, (F,) -> 0, 0.
    end = _step(builder, 4, rewards=[1.0, 1.0], truncated=[True, False], greedy=[False, True])
    np.testing.assert_array_equal(end.obs_B[:, 0], [2.0, 3.0, 4.0])
    np.testing.assert_array_equal(end.steps_B, [3, 2, 1])
    np.testing.assert_array_equal(end.later_greedy_B, [1, 0, 0])


def test_one_step_and_reset() -> None:
    builder = NStepBuilder(behaviour=True, num_envs=2, n=1, gamma=GAMMA, obs_shape=(1,))
    out = _step(builder, 0, rewards=[1.0, 2.0], terminated=[False, True])
    np.testing.assert_allclose(out.return_B, [1.0, 2.0])
    np.testing.assert_allclose(out.discount_B, [0.9, 0.9])
    np.testing.assert_array_equal(out.done_B, [False, True])
    np.testing.assert_array_equal(out.steps_B, [1, 1])
    np.testing.assert_array_equal(out.later_greedy_B, [0, 0])
    assert builder.pending() == 0
    builder = NStepBuilder(behaviour=True, num_envs=2, n=3, gamma=GAMMA, obs_shape=(1,))
    _step(builder, 0, rewards=[1.0, 2.0])
    assert builder.pending() == 2
    builder.reset()
    assert builder.pending() == 0
    assert len(_step(builder, 1, rewards=[1.0, 2.0], truncated=[True, True])) == 2


def test_image_observations_keep_dtype_and_shape() -> None:
    builder = NStepBuilder(
        behaviour=True, num_envs=2, n=2, gamma=0.99, obs_shape=(4, 84, 84), obs_dtype=np.uint8
    )
    rng = np.random.default_rng(0)
    frames = rng.integers(0, 256, size=(3, 2, 4, 84, 84), dtype=np.uint8)
    kwargs = {
        "action_N": np.zeros(2, dtype=np.int64),
        "reward_N": np.ones(2, dtype=np.float32),
        "terminated_N": np.zeros(2, dtype=bool),
        "truncated_N": np.zeros(2, dtype=bool),
        "greedy_N": np.ones(2, dtype=bool),
        "epsilon": 0.5,
    }
    builder.step(obs_N=frames[0], next_obs_N=frames[1], **kwargs)
    out = builder.step(obs_N=frames[1], next_obs_N=frames[2], **kwargs)
    assert out.obs_B.dtype == np.uint8
    assert out.obs_B.shape == (2, 4, 84, 84)
    np.testing.assert_array_equal(out.obs_B, frames[0])
    np.testing.assert_array_equal(out.next_obs_B, frames[2])


def test_rejects_bad_arguments() -> None:
    with pytest.raises(ValueError, match="gamma"):
        NStepBuilder(behaviour=True, num_envs=1, n=3, gamma=1.5, obs_shape=(1,))
    with pytest.raises(ValueError, match="n="):
        NStepBuilder(behaviour=True, num_envs=1, n=0, gamma=0.9, obs_shape=(1,))
    with pytest.raises(ValueError, match="n="):
        NStepBuilder(
            behaviour=True, num_envs=1, n=256, gamma=0.9, obs_shape=(1,)
        )  # steps_B is uint8
    builder = NStepBuilder(behaviour=True, num_envs=2, n=3, gamma=0.9, obs_shape=(1,))
    with pytest.raises(ValueError, match="obs_N"):
        _step(builder, 0, rewards=[1.0, 2.0, 3.0])


def _reference_rows(
    steps: list[dict], *, num_envs: int, n: int, gamma: float
) -> list[tuple[float, ...]]:
    """Naive per-env list implementation of the same n-step rules, one row per transition."""
    pending: list[list[tuple[float, int, float, bool]]] = [[] for _ in range(num_envs)]
    rows = []
    for s in steps:
        for e in range(num_envs):
            pending[e].append((s["obs"][e], s["act"][e], s["rew"][e], s["greedy"][e]))
            ended = s["term"][e] or s["trunc"][e]
            starts = range(len(pending[e])) if ended else ([0] if len(pending[e]) == n else [])
            for j in starts:
                rewards = [r for _, _, r, _ in pending[e][j:]]
                ret = sum(gamma**k * r for k, r in enumerate(rewards))
                later_greedy = sum(g for _, _, _, g in pending[e][j + 1 :])
                o, a, _, _ = pending[e][j]
                done = ended and s["term"][e]
                m = len(rewards)
                rows.append((o, a, ret, gamma**m, s["next"][e], done, m, later_greedy))
            pending[e] = [] if ended else pending[e][len(starts) :]
    return rows


def test_matches_naive_reference_on_random_episodes() -> None:
    rng = np.random.default_rng(0)
    num_envs, n, gamma = 4, 3, 0.97
    builder = NStepBuilder(behaviour=True, num_envs=num_envs, n=n, gamma=gamma, obs_shape=(1,))
    steps, out = [], []
    for t in range(200):
        s = {
            "obs": 1000.0 * np.arange(num_envs) + t,
            "act": rng.integers(0, 5, num_envs),
            "rew": rng.normal(size=num_envs).astype(np.float32),
            "next": 1000.0 * np.arange(num_envs) + t + 0.5,
            "term": rng.random(num_envs) < 0.1,
            "trunc": rng.random(num_envs) < 0.05,
            "greedy": rng.random(num_envs) < 0.6,
        }
        steps.append(s)
        out.append(
            builder.step(
                obs_N=s["obs"][:, None],
                action_N=s["act"],
                reward_N=s["rew"],
                next_obs_N=s["next"][:, None],
                terminated_N=s["term"],
                truncated_N=s["trunc"],
                greedy_N=s["greedy"],
                epsilon=0.0,
            )
        )
    got = TransitionBatch.concatenate(out)
    ref = np.array(sorted(_reference_rows(steps, num_envs=num_envs, n=n, gamma=gamma)))
    mine = np.stack(
        [
            got.obs_B[:, 0],
            got.action_B,
            got.return_B,
            got.discount_B,
            got.next_obs_B[:, 0],
            got.done_B,
            got.steps_B,
            got.later_greedy_B,
        ],
        axis=1,
    ).astype(np.float64)
    mine = mine[np.argsort(mine[:, 0], kind="stable")]
    assert mine.shape == ref.shape
    np.testing.assert_allclose(mine, ref, rtol=1e-5, atol=1e-5)


def test_without_the_actor_correction_the_behaviour_fields_are_none() -> None:
    builder = NStepBuilder(num_envs=1, n=1, gamma=GAMMA, obs_shape=(1,))
    batch = builder.step(
        obs_N=np.zeros((1, 1), np.float32),
        action_N=np.zeros(1, np.int64),
        reward_N=np.ones(1),
        next_obs_N=np.ones((1, 1), np.float32),
        terminated_N=np.zeros(1, bool),
        truncated_N=np.zeros(1, bool),
        greedy_N=np.ones(1, bool),
        epsilon=0.4,
    )
    assert len(batch) == 1 and not batch.has_behaviour
    assert batch.greedy_B is None and batch.steps_B is None and batch.later_greedy_B is None
