"""Atari through ale-py: DeepMind preprocessing from gymnasium's wrappers, and the training-only
signals (life loss as terminal, clipped rewards) next to unclipped reported returns."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.vector import AutoresetMode, SyncVectorEnv
from gymnasium.wrappers import AtariPreprocessing, FrameStackObservation

from apex_dqn.algo.actor import Actor
from apex_dqn.algo.evaluator import Evaluator
from apex_dqn.algo.networks import build_q_network, get_weights
from apex_dqn.config import (
    ActorsConfig,
    AlgoConfig,
    AtariConfig,
    Config,
    ConfigError,
    EnvConfig,
    NetworkConfig,
)
from apex_dqn.envs.factory import (
    inspect_env,
    life_lost,
    make_env,
    make_vector_env,
    training_rewards,
)

pytest.importorskip("ale_py")

PONG = EnvConfig(id="ALE/Pong-v5", atari=AtariConfig())


def test_pong_is_preprocessed_the_deepmind_way():
    info = inspect_env(PONG)
    assert info.obs_shape == (4, 84, 84) and info.obs_dtype == "uint8"
    assert info.num_actions == 6
    env = make_env(PONG)
    try:
        assert isinstance(env, FrameStackObservation)
        pre = env.env
        assert isinstance(pre, AtariPreprocessing)
        assert pre.frame_skip == 4 and pre.noop_max == 30 and not pre.terminal_on_life_loss
        assert env.unwrapped._frameskip == 1  # ALE itself repeats nothing
        obs, _ = env.reset(seed=1)
        # A reset fills the stack with the first frame; each step shifts one new frame in.
        assert obs.dtype == np.uint8 and all((obs[k] == obs[0]).all() for k in range(4))
        nxt, *_ = env.step(0)
        np.testing.assert_array_equal(nxt[:3], obs[1:])
    finally:
        env.close()


def test_unknown_ale_game_fails_with_the_key():
    with pytest.raises(ConfigError, match=r"env.id='ALE/NoSuchGame-v5'.*ALE id"):
        inspect_env(EnvConfig(id="ALE/NoSuchGame-v5", atari=AtariConfig()))


def test_nature_torso_without_frames_is_a_config_error():
    with pytest.raises(ConfigError, match=r"network\.torso=nature needs stacked frames"):
        Config(network=NetworkConfig(torso="nature"))


def test_life_loss_and_reward_clipping_helpers():
    prev = np.array([3, 3, 1, 0])
    now = np.array([2, 3, 5, 0])
    done = np.array([False, False, True, False])
    # env 2 ended (a new game reports 5 lives): not a life loss.
    np.testing.assert_array_equal(life_lost(prev, now, done), [True, False, False, False])
    atari = AtariConfig()
    np.testing.assert_array_equal(training_rewards(np.array([-7.0, 0.0, 4.0]), atari), [-1, 0, 1])
    raw = np.array([-7.0, 4.0])
    np.testing.assert_array_equal(training_rewards(raw, AtariConfig(clip_rewards=False)), raw)
    np.testing.assert_array_equal(training_rewards(raw, None), raw)


class _LivesEnv(gym.Env):
    """Pays 5 per step and loses one of 3 lives every 4 steps: the game ends after 12."""

    observation_space = gym.spaces.Box(0, 255, (4, 84, 84), np.uint8)
    action_space = gym.spaces.Discrete(4)

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        self._t = 0
        return np.zeros((4, 84, 84), np.uint8), {"lives": 3}

    def step(self, action):
        self._t += 1
        lives = 3 - self._t // 4
        obs = np.full((4, 84, 84), self._t, np.uint8)
        return obs, 5.0, lives == 0, False, {"lives": lives}


@pytest.mark.parametrize("life_loss", [True, False])
def test_actor_trains_on_clipped_lives_but_reports_whole_games(life_loss):
    atari = AtariConfig(terminal_on_life_loss=life_loss)
    actor = Actor(
        actor_index=0,
        env=EnvConfig(id="ALE/Pong-v5", atari=atari),
        network=NetworkConfig(torso="nature"),
        algo=AlgoConfig(n_step=3, gamma=0.5),
        actors=ActorsConfig(num_actors=1, envs_per_actor=2, push_every=8),
        num_actions=4,
        obs_shape=(4, 84, 84),
        obs_dtype="uint8",
        seed=0,
    )
    # The same actor code on a scripted env whose rewards and lives are known.
    actor._envs.close()
    actor._envs = SyncVectorEnv([_LivesEnv] * 2, autoreset_mode=AutoresetMode.SAME_STEP)
    actor._obs_N, infos = actor._envs.reset(seed=0)
    actor._lives_N = np.asarray(infos["lives"])
    batches, report = actor.run_steps(12)
    assert report.episode_returns == [60.0, 60.0]  # unclipped, whole games
    assert report.episode_lengths == [12, 12]
    rows = batches
    done = np.concatenate([b.done_B for b in rows])
    returns = np.concatenate([b.return_B for b in rows])
    # Clipped rewards of 1 with gamma 0.5: a full 3-step window returns 1.75.
    assert returns.max() == pytest.approx(1.75)
    # Each game has 3 lives: with life loss, every life's last window is terminal (3 per
    # game, each flush ending 1 to 3 rows); without, only the game's end is.
    discount = np.concatenate([b.discount_B for b in rows])
    terminal_windows = int((done & np.isclose(discount, 0.5)).sum())
    assert terminal_windows == (3 * 2 if life_loss else 1 * 2)


def test_evaluator_plays_whole_pong_games_with_small_epsilon():
    info = inspect_env(PONG)
    net = build_q_network(NetworkConfig(torso="nature"), obs_shape=(4, 84, 84), num_actions=6)
    evaluator = Evaluator(
        env=EnvConfig(id="ALE/Pong-v5", max_episode_steps=300, atari=AtariConfig()),
        network=NetworkConfig(torso="nature"),
        obs_shape=info.obs_shape,
        num_actions=info.num_actions,
        episodes=2,
        seed=0,
        epsilon=0.05,
    )
    result = evaluator.evaluate(get_weights(net), version=3)
    evaluator.close()
    assert result.episodes == 2 and result.weights_version == 3
    # Truncated at 1,200 frames, of which the no-op starts take up to 30: Pong pays -1 or +1
    # per point.
    assert 292 <= result.mean_length <= 300 and -21 <= result.min_return <= 0


def test_async_vector_env_matches_sync():
    sync = make_vector_env(PONG, num_envs=2, mode="sync")
    asyn = make_vector_env(PONG, num_envs=2, mode="async")
    try:
        o1, _ = sync.reset(seed=3)
        o2, _ = asyn.reset(seed=3)
        np.testing.assert_array_equal(o1, o2)
        for _ in range(5):
            a = np.array([2, 3])
            s1 = sync.step(a)
            s2 = asyn.step(a)
            np.testing.assert_array_equal(s1[0], s2[0])
            np.testing.assert_array_equal(s1[1], s2[1])
    finally:
        sync.close()
        asyn.close()


def test_ale_vector_env_stacks_like_the_gymnasium_wrappers():
    """actors.vector_mode=ale: ale-py's C++ vector env, with stacks as make_env's: the first
    frame repeated at a reset, one frame shifted in per step, the final stack of an ended
    episode in infos["final_obs"], unclipped rewards, lives, the time limit in agent steps."""
    from apex_dqn.envs.factory import AleVectorEnv

    cfg = EnvConfig(id="ALE/Breakout-v5", max_episode_steps=40, atari=AtariConfig())
    env = make_vector_env(cfg, num_envs=3, mode="ale")
    assert isinstance(env, AleVectorEnv)
    try:
        env.reset(seed=2**32 + 7)  # seeds beyond ALE's C++ int are folded into range
        obs, info = env.reset(seed=2)
        assert obs.shape == (3, 4, 84, 84) and obs.dtype == np.uint8
        assert all((obs[:, k] == obs[:, 0]).all() for k in range(4))
        assert list(info["lives"]) == [5, 5, 5]
        rng = np.random.default_rng(0)
        ended = 0
        for t in range(1, 121):
            nxt, reward, term, trunc, infos = env.step(rng.integers(0, 4, 3))
            assert reward.dtype == np.float64 and infos["lives"].shape == (3,)
            done = term | trunc
            for i in range(3):
                shown = infos["final_obs"][i] if done[i] else nxt[i]
                np.testing.assert_array_equal(shown[:3], obs[i, 1:])  # one frame shifted in
                if done[i]:  # the next episode starts with its first frame repeated
                    assert all((nxt[i, k] == nxt[i, 0]).all() for k in range(4))
            ended += int(done.sum())
            obs = nxt
            if t == 40:
                assert trunc.all() or term.any()  # 40 agent steps: the limit
        assert ended >= 3
    finally:
        env.close()


def test_ale_mode_needs_atari():
    with pytest.raises(ConfigError, match=r"actors\.vector_mode=ale needs an Atari env"):
        Config(actors=ActorsConfig(vector_mode="ale"))


@pytest.mark.parametrize(("mode", "kind"), [("ale", "AleVectorEnv"), ("sync", "SyncVectorEnv")])
def test_the_evaluator_plays_the_env_the_actors_train_on(compose_config, mode, kind):
    """Evaluation must see exactly what training sees: with actors on ale-py's vector env
    (the env=atari default) the run's evaluator plays that env too, not gymnasium's wrappers."""
    import dataclasses

    from apex_dqn.roles import build

    cfg = compose_config("experiment=pong", f"actors.vector_mode={mode}")
    info = inspect_env(cfg.env)
    spec = build.evaluator_spec(cfg, info)
    assert spec.vector_mode == mode and spec.epsilon == 0.01
    short = dataclasses.replace(cfg.env, max_episode_steps=30)
    evaluator = dataclasses.replace(spec, env=short, episodes=2).build()
    try:
        assert type(evaluator._envs).__name__ == kind
        net = build_q_network(cfg.network, obs_shape=info.obs_shape, num_actions=info.num_actions)
        result = evaluator.evaluate(get_weights(net), version=0)
    finally:
        evaluator.close()
    # 30 agent steps (120 frames); with gymnasium's wrappers the no-op starts' frames count too.
    assert 22 <= result.mean_length <= 30 and len(result.returns) == 2
