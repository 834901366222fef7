"""The seed tree: every actor, environment, shard and reset gets its own stream."""

from __future__ import annotations

from apex_dqn.config import Config
from apex_dqn.core import seeding
from apex_dqn.envs.factory import EnvInfo
from apex_dqn.roles import build


def test_actor_env_seeds_never_overlap_across_actors_resumes_and_resets():
    seeds = [
        s
        for generation in range(2)
        for actor in range(8)
        for reset in range(3)
        for s in seeding.env_seeds(seeding.actor_seed(0, actor, generation), 16, reset)
    ]
    assert len(set(seeds)) == len(seeds) == 2 * 8 * 3 * 16
    assert all(0 <= s < 2**32 for s in seeds)


def test_neighbouring_actors_do_not_share_environment_seeds():
    """The old scheme (actor i seeded base + i, env j seed + j) gave actor 0's env 1 the seed
    of actor 1's env 0; the tree's seeds of any two actors are disjoint."""
    cfg = Config()
    info = EnvInfo(obs_shape=(4,), obs_dtype="float32", num_actions=2, reward_threshold=None)
    a0, a1 = (build.actor_spec(cfg, info, i).seed for i in range(2))
    assert not set(seeding.env_seeds(a0, 8)) & set(seeding.env_seeds(a1, 8))


def test_seeds_are_reproducible_and_depend_on_the_run_seed():
    assert seeding.actor_seed(3, 1) == seeding.actor_seed(3, 1)
    assert seeding.actor_seed(3, 1) != seeding.actor_seed(4, 1)
    assert seeding.env_seeds(5, 4) == seeding.env_seeds(5, 4)
    roles = {seeding.actor_seed(0, 0), seeding.shard_seed(0, 0), seeding.evaluator_seed(0)}
    assert len(roles) == 3


def test_two_actors_environments_draw_different_random_streams():
    """Built as a run builds them: every env of every actor has its own RNG state."""
    from apex_dqn.algo.actor import Actor
    from apex_dqn.config import EnvConfig, NetworkConfig
    from apex_dqn.envs.factory import inspect_env

    cfg = Config(env=EnvConfig(id="MinAtar/Breakout-v1"), network=NetworkConfig(torso="minatar"))
    cfg.actors.envs_per_actor = 4
    info = inspect_env(cfg.env)
    draws = []
    for index in range(2):
        actor = build.actor_spec(cfg, info, index).build()
        assert isinstance(actor, Actor)
        draws += [int(env.unwrapped.game.random.randint(2**31)) for env in actor._envs.envs]
        actor.close()
    assert len(set(draws)) == 8
