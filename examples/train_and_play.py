"""Train CartPole-v1 from Python with apex-dqn, then play greedy episodes with what it learned.

    python examples/train_and_play.py                       # at most a minute of training
    python examples/train_and_play.py actors.num_actors=4 train.max_seconds=120 seed=3

Arguments are overrides exactly as on the ``apex-dqn`` command line. The run writes its
directory as the command does (``outputs/<date>/<time>-CartPole-v1-seed0``). Ctrl-C stops the
training early (with a final checkpoint) and the episodes are played with it.
"""

from __future__ import annotations

import sys

import apex_dqn

EPISODES = 5


def main(overrides: list[str]) -> None:
    """Train with ``overrides`` on top of a one-minute CartPole budget; play ``EPISODES``."""
    result = apex_dqn.train(["env.id=CartPole-v1", "train.max_seconds=60", *overrides])
    summary = result.summary
    print(
        f"trained: solved={result.solved}, best eval return {summary['best_eval_return']}, "
        f"{summary['env_steps']:,} env steps in {summary['wall_s']:.1f} s; run in {result.run_dir}"
    )

    policy = apex_dqn.load_policy(result.run_dir)  # or the file: run_dir / "checkpoint_best.pt"
    env = policy.make_env()
    returns = []
    for episode in range(EPISODES):
        obs, _ = env.reset(seed=1000 + episode)
        total, done = 0.0, False
        while not done:
            obs, reward, terminated, truncated, _ = env.step(policy(obs))  # the greedy action
            total += float(reward)
            done = terminated or truncated
        returns.append(total)
    env.close()
    print(f"greedy episodes: returns {returns}, mean {sum(returns) / len(returns):.1f}")


if __name__ == "__main__":
    main(sys.argv[1:])
