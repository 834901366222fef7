"""Environment checks and the vector env's final-observation handling."""

from __future__ import annotations

import numpy as np
import pytest

from apex_dqn.config import ConfigError, EnvConfig
from apex_dqn.envs.factory import (
    MINATAR_GAMES,
    inspect_env,
    make_env,
    make_vector_env,
    true_next_obs,
)


def test_cartpole_info():
    info = inspect_env(EnvConfig(id="CartPole-v1"))
    assert info.obs_shape == (4,) and info.num_actions == 2 and info.reward_threshold == 475.0


@pytest.mark.parametrize(
    ("env_id", "fragment"),
    [
        ("NoSuchEnv-v0", "not a registered gymnasium environment"),
        ("Pendulum-v1", "needs a Discrete action space"),
        ("FrozenLake-v1", "needs a vector observation"),
    ],
)
def test_unusable_envs_fail_clearly(env_id, fragment):
    with pytest.raises(ConfigError, match=fragment) as err:
        inspect_env(EnvConfig(id=env_id))
    assert f"env.id={env_id!r}" in str(err.value)


def test_same_step_autoreset_gives_the_final_observation():
    envs = make_vector_env(EnvConfig(id="CartPole-v1", max_episode_steps=5), num_envs=2)
    obs, _ = envs.reset(seed=0)
    for _ in range(5):
        obs, _, term, trunc, infos = envs.step(np.zeros(2, dtype=np.int64))
    done = term | trunc
    assert done.all(), "a 5-step limit must end both episodes at step 5"
    real = true_next_obs(obs, done, infos)
    assert not np.allclose(real, obs), "the reset observation must be replaced"
    np.testing.assert_allclose(real[0], infos["final_obs"][0])
    envs.close()


@pytest.mark.parametrize(("game", "channels"), [("Breakout", 4), ("SpaceInvaders", 6)])
def test_minatar_observations_are_channels_first_uint8(game, channels):
    cfg = EnvConfig(id=f"MinAtar/{game}-v1")
    info = inspect_env(cfg)
    assert info.obs_shape == (channels, 10, 10) and info.obs_dtype == "uint8"
    env = make_env(cfg)
    obs, _ = env.reset(seed=0)
    raw = env.unwrapped.game.state()  # MinAtar's own (10, 10, C) bool grid
    assert obs.dtype == np.uint8 and obs.shape == (channels, 10, 10)
    np.testing.assert_array_equal(obs, np.moveaxis(raw, -1, 0).astype(np.uint8))
    env.close()


def test_unknown_minatar_game_lists_the_games():
    with pytest.raises(ConfigError, match="MinAtar/Breakout-v1") as err:
        inspect_env(EnvConfig(id="MinAtar/Pong-v1"))
    assert all(game in str(err.value) for game in MINATAR_GAMES)
