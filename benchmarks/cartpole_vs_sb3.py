"""CartPole-v1, whole command to a confirmed solve: apex-dqn's default command against
Stable-Baselines3's DQN, alternating seed by seed, each a fresh process.

apex-dqn runs as ``python -m apex_dqn seed=<k>`` (``cartpole_time_to_solve.run_seed``). SB3 runs
in a fresh Python (``--sb3-worker``) with the RL Baselines3 Zoo's tuned DQN hyperparameters
for CartPole-v1 (lr 2.3e-3, batch 64, 100k buffer, learning starts 1,000, gamma 0.99, target
every 10 updates, 128 gradient steps every 256 env steps, epsilon to 0.04 over 16% of 50k
steps, a 256x256 MLP). Both stop by the same rule: a greedy evaluation of 10 episodes at or
above 475 confirmed by a second one of 10 new episodes; SB3 is evaluated every 2,048 env
steps, in its own process (apex-dqn's evaluator runs beside its learner on the same cores).
The figure is each command's wall time from launch to exit, imports included; the ratio is
apex-dqn's median over SB3's.

    python benchmarks/cartpole_vs_sb3.py --seeds 5 --json cartpole_vs_sb3.json
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from cartpole_time_to_solve import run_seed
from provenance import provenance

TARGET = 475.0
EVAL_EVERY = 2048
EVAL_EPISODES = 10
MAX_STEPS = 200_000
ZOO = {  # rl-baselines3-zoo, hyperparams/dqn.yml, CartPole-v1
    "learning_rate": 2.3e-3,
    "batch_size": 64,
    "buffer_size": 100_000,
    "learning_starts": 1000,
    "gamma": 0.99,
    "target_update_interval": 10,
    "train_freq": 256,
    "gradient_steps": 128,
    "exploration_fraction": 0.16,
    "exploration_final_eps": 0.04,
}
ZOO_TIMESTEPS = 50_000  # the zoo's budget: exploration_fraction is a share of it


def sb3_worker(seed: int, out: Path) -> None:
    """Train SB3's DQN until a confirmed solve (or MAX_STEPS); write what happened to ``out``."""
    start = time.time()
    import gymnasium as gym
    import numpy as np
    from stable_baselines3 import DQN
    from stable_baselines3.common.callbacks import BaseCallback

    def greedy(model: Any, env_seed: int) -> float:
        env = gym.make("CartPole-v1")
        returns = []
        for episode in range(EVAL_EPISODES):
            obs, _ = env.reset(seed=env_seed + episode)
            done, total = False, 0.0
            while not done:
                action, _ = model.predict(obs, deterministic=True)
                obs, reward, terminated, truncated, _ = env.step(int(action))
                total += float(reward)
                done = terminated or truncated
            returns.append(total)
        return float(np.mean(returns))

    class SolveCheck(BaseCallback):
        def __init__(self) -> None:
            super().__init__()
            self.solved_at: int | None = None
            self.evals: list[tuple[int, float]] = []

        def _on_step(self) -> bool:
            if self.num_timesteps % EVAL_EVERY:
                return True
            first = greedy(self.model, 10_000 + 100 * len(self.evals))
            self.evals.append((self.num_timesteps, first))
            if first >= TARGET and greedy(self.model, 90_000 + 100 * len(self.evals)) >= TARGET:
                self.solved_at = self.num_timesteps
                return False
            return True

    env = gym.make("CartPole-v1")
    model = DQN(
        "MlpPolicy", env, seed=seed, policy_kwargs={"net_arch": [256, 256]}, verbose=0, **ZOO
    )
    # exploration_fraction counts over the zoo's 50k steps; learn() would stretch it over MAX.
    model.exploration_schedule = _linear(1.0, ZOO["exploration_final_eps"], 0.16 * ZOO_TIMESTEPS)
    check = SolveCheck()
    model.learn(total_timesteps=MAX_STEPS, callback=check)
    out.write_text(
        json.dumps(
            {
                "solved": check.solved_at is not None,
                "env_steps_at_solve": check.solved_at,
                "time_to_solve_s": time.time() - start if check.solved_at else None,
                "evals": check.evals,
            }
        )
    )


def _linear(begin: float, end: float, steps: float) -> Any:
    """An SB3 schedule of ``progress_remaining`` over MAX_STEPS: ``begin`` to ``end`` in
    ``steps`` env steps, then ``end``."""

    def schedule(progress_remaining: float) -> float:
        done = (1.0 - progress_remaining) * MAX_STEPS
        return end if done >= steps else begin + (end - begin) * done / steps

    return schedule


def run_sb3(seed: int, workdir: Path, timeout: float) -> dict[str, Any]:
    """One SB3 command for ``seed``; its figures."""
    out = workdir / f"sb3-seed{seed}.json"
    cmd = [sys.executable, __file__, "--sb3-worker", str(seed), str(out)]
    start = time.perf_counter()
    subprocess.run(cmd, check=True, timeout=timeout, stdin=subprocess.DEVNULL)
    wall = time.perf_counter() - start
    return {"seed": seed, "wall_s": round(wall, 2), **json.loads(out.read_text())}


def summarize(apex: list[dict[str, Any]], sb3: list[dict[str, Any]]) -> dict[str, Any]:
    """Medians of the command walls of solved runs, and apex-dqn's over SB3's."""
    a = statistics.median(r["wall_s"] for r in apex)
    b = statistics.median(r["wall_s"] for r in sb3)
    return {
        "apex_median_wall_s": a,
        "sb3_median_wall_s": b,
        "ratio": a / b,
        "apex_solved": sum(bool(r["solved"]) for r in apex),
        "sb3_solved": sum(bool(r["solved"]) for r in sb3),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--json", type=Path, default=None)
    parser.add_argument("--timeout", type=float, default=600.0)
    parser.add_argument("--sb3-worker", nargs=2, metavar=("SEED", "OUT"), default=None)
    args = parser.parse_args()
    if args.sb3_worker:
        sb3_worker(int(args.sb3_worker[0]), Path(args.sb3_worker[1]))
        return
    apex: list[dict[str, Any]] = []
    sb3: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="cartpole-vs-sb3-") as tmp:
        for seed in range(args.seeds):
            order = ("apex", "sb3") if seed % 2 == 0 else ("sb3", "apex")
            for system in order:
                if system == "apex":
                    apex.append(run_seed(seed, [], Path(tmp), args.timeout))
                else:
                    sb3.append(run_sb3(seed, Path(tmp), args.timeout))
                row = (apex if system == "apex" else sb3)[-1]
                print(
                    f"{system} seed {seed}: {row['wall_s']} s, solved {row['solved']}", flush=True
                )
    summary = summarize(apex, sb3)
    print()
    print(
        "| CartPole-v1, whole command to a confirmed solve | per seed (s) | median (s) | solved |"
    )
    print("| --- | --- | ---: | ---: |")
    for name, rows in (("apex-dqn (defaults)", apex), ("Stable-Baselines3 DQN (zoo)", sb3)):
        walls = ", ".join(f"{r['wall_s']:.1f}" for r in rows)
        median = statistics.median(r["wall_s"] for r in rows)
        solved = sum(bool(r["solved"]) for r in rows)
        print(f"| {name} | {walls} | {median:.1f} | {solved}/{len(rows)} |")
    print(f"| apex-dqn / SB3 | | {summary['ratio']:.2f}x | |")
    if args.json:
        payload = {"apex": apex, "sb3": sb3, **summary, "zoo": ZOO, "provenance": provenance()}
        args.json.write_text(json.dumps(payload, indent=2) + "\n")


if __name__ == "__main__":
    main()
