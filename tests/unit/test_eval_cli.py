"""apex-dqn-eval: a checkpoint evaluated through the real entry point, with and without video."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from apex_dqn.config import Config, EnvConfig, EvalConfig
from apex_dqn.envs.factory import inspect_env
from apex_dqn.files.atomic import write_bytes_atomic
from apex_dqn.files.checkpoint import FORMAT, state_to_bytes
from apex_dqn.roles import build
from apex_dqn.run import outputs
from apex_dqn.run.state import RunTracker
from tests.unit.cli_helpers import fails_in_one_line


def _write_checkpoint(cfg: Config, path: Path) -> Path:
    info = inspect_env(cfg.env)
    learner = build.learner_spec(cfg, info).build()
    tracker = RunTracker(env_id=cfg.env.id, seed=0, target_return=None)
    state = {**outputs.checkpoint_extra(cfg, info, tracker), "learner": learner.state_dict()}
    write_bytes_atomic(path, state_to_bytes(state))
    return path


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory) -> Path:
    """A CartPole checkpoint as the runtime writes it (config, env, learner state)."""
    cfg = Config(env=EnvConfig(max_episode_steps=200))
    return _write_checkpoint(cfg, tmp_path_factory.mktemp("run") / "checkpoint.pt")


def test_eval_cli_uses_the_runs_evaluation_epsilon_unless_given(tmp_path):
    """The figure apex-dqn-eval prints must match the run's learning curve (Atari runs
    evaluate with epsilon 0.01), so the run's eval.epsilon is the default."""
    from apex_dqn.cli.evaluate import EvalRunConfig, evaluate

    cfg = Config(env=EnvConfig(max_episode_steps=60), eval=EvalConfig(epsilon=0.3))
    path = _write_checkpoint(cfg, tmp_path / "checkpoint.pt")

    def run(name: str, **kwargs: float) -> dict:
        out = str(tmp_path / f"{name}.json")
        return evaluate(EvalRunConfig(checkpoint=str(path), episodes=8, output=out, **kwargs))

    default, explicit, greedy = (
        run("default"),
        run("explicit", epsilon=0.3),
        run("greedy", epsilon=0.0),
    )
    assert default["epsilon"] == 0.3 and greedy["epsilon"] == 0.0
    assert default["returns"] == explicit["returns"]
    assert default["returns"] != greedy["returns"]


def _eval(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "apex_dqn.cli.evaluate", *args],
        capture_output=True,
        text=True,
        timeout=120,
        stdin=subprocess.DEVNULL,
    )


def test_eval_cli_plays_the_checkpoints_greedy_policy(checkpoint, tmp_path):
    """The CLI's returns equal episodes played here by hand: the checkpoint's online network
    (torch, not the numpy acting copy), gymnasium's env reset with the documented evaluation
    seeds, the argmax action until the episode ends."""
    import gymnasium as gym
    import torch

    from apex_dqn.algo.networks import build_q_network
    from apex_dqn.core.seeding import env_seeds

    out = tmp_path / "eval.json"
    proc = _eval(f"checkpoint={checkpoint}", "episodes=6", "seed=11", f"output={out}")
    assert proc.returncode == 0, proc.stderr
    result = json.loads(out.read_text())
    assert result["episodes"] == 6 and len(result["returns"]) == 6
    assert result["mean_return"] == pytest.approx(np.mean(result["returns"]))
    assert result["min_return"] <= result["mean_return"] <= result["max_return"]
    assert "return mean" in proc.stdout and str(out) in proc.stdout

    state = torch.load(checkpoint, weights_only=True)
    config = Config()
    net = build_q_network(config.network, obs_shape=(4,), num_actions=2)
    net.load_state_dict(state["learner"]["online"])
    returns = []
    for seed in env_seeds(11, 6, 0):
        env = gym.make("CartPole-v1", max_episode_steps=200)
        obs, _ = env.reset(seed=seed)
        total, done = 0.0, False
        while not done:
            with torch.no_grad():
                action = int(net(torch.as_tensor(obs[None], dtype=torch.float32)).argmax())
            obs, reward, term, trunc, _ = env.step(action)
            total, done = total + float(reward), term or trunc
        returns.append(total)
    assert result["returns"] == returns


def test_eval_cli_records_one_video_per_episode(checkpoint, tmp_path):
    pytest.importorskip("moviepy")
    pytest.importorskip("pygame")
    out = tmp_path / "with_video.json"
    proc = _eval(f"checkpoint={checkpoint.parent}", "episodes=2", "video=true", f"output={out}")
    assert proc.returncode == 0, proc.stderr
    result = json.loads(out.read_text())
    videos = [Path(v) for v in result["videos"]]
    assert len(videos) == 2 and all(v.suffix == ".mp4" for v in videos)
    assert all(v.parent == tmp_path / "with_video" and v.stat().st_size > 1000 for v in videos)
    assert all(0 < r <= 200 for r in result["returns"])


@pytest.mark.parametrize(
    ("args", "fragment"),
    [
        ((), "checkpoint=<path> is required"),
        (("checkpoint=/nonexistent/ckpt.pt",), "does not exist"),
        (("checkpoint=x", "episodes=0"), "episodes must be an integer in [1, 100000], got 0"),
        (("checkpoint=x", "epsilon=2"), "epsilon must be a number in [0, 1]"),
        (("checkpoint=x", "speed=3"), "keys: checkpoint, episodes"),
        (("checkpoint",), "key=value"),
    ],
)
def test_eval_cli_bad_input_names_the_key(args, fragment):
    proc = _eval(*args)
    fails_in_one_line(proc, fragment)


def test_eval_cli_corrupt_or_missing_checkpoints_name_the_path(checkpoint, tmp_path):
    import torch

    corrupt = tmp_path / "corrupt.pt"
    corrupt.write_bytes(b"not a checkpoint at all")
    truncated = tmp_path / "truncated.pt"  # a real checkpoint cut off, as by a full disk
    truncated.write_bytes(checkpoint.read_bytes()[: checkpoint.stat().st_size // 2])
    foreign = tmp_path / "foreign.pt"  # a readable torch file of someone else's
    foreign.write_bytes(state_to_bytes({"weights": {"w": torch.zeros(3)}}))
    hollow = tmp_path / "hollow.pt"  # the format mark, but no config or weights
    hollow.write_bytes(state_to_bytes({"format": FORMAT}))
    empty_run = tmp_path / "run"
    empty_run.mkdir()
    cases = [
        (corrupt, "not a readable apex-dqn checkpoint"),
        (truncated, "not a readable apex-dqn checkpoint"),
        (foreign, "is not an apex-dqn checkpoint (no format"),
        (hollow, "is not an apex-dqn checkpoint"),
        (empty_run, "without checkpoint.pt"),
    ]
    for path, fragment in cases:
        fails_in_one_line(_eval(f"checkpoint={path}"), repr(str(path)), fragment)


def test_eval_cli_unwritable_output_names_it(checkpoint, tmp_path):
    blocker = tmp_path / "a_file"
    blocker.write_text("")
    output = blocker / "eval.json"  # a path below a file: cannot be created
    proc = _eval(f"checkpoint={checkpoint}", "episodes=1", f"output={output}")
    fails_in_one_line(proc, f"output={str(output)!r} cannot be written")
