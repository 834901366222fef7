"""apex-dqn-eval: a checkpoint evaluated through the real entry point, with and without video."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from apex_dqn.checkpoint import state_to_bytes, write_bytes_atomic
from apex_dqn.config import Config, EnvConfig
from apex_dqn.envs import inspect_env
from apex_dqn.evaluate import Evaluator
from apex_dqn.learner import Learner
from apex_dqn.metrics import RunTracker
from apex_dqn.runtime import common


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory) -> Path:
    """A CartPole checkpoint as the runtime writes it (config, env, learner state)."""
    cfg = Config(env=EnvConfig(max_episode_steps=200))
    info = inspect_env(cfg.env)
    learner = Learner(**common.learner_kwargs(cfg, info))
    tracker = RunTracker(env_id=cfg.env.id, seed=0, target_return=None)
    state = {**common.checkpoint_extra(cfg, info, tracker), "learner": learner.state_dict()}
    path = tmp_path_factory.mktemp("run") / "checkpoint.pt"
    write_bytes_atomic(path, state_to_bytes(state))
    return path


def _eval(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "apex_dqn.eval_cli", *args],
        capture_output=True,
        text=True,
        timeout=120,
        stdin=subprocess.DEVNULL,
    )


def test_eval_cli_matches_the_evaluator(checkpoint, tmp_path):
    out = tmp_path / "eval.json"
    proc = _eval(f"checkpoint={checkpoint}", "episodes=6", "seed=11", f"output={out}")
    assert proc.returncode == 0, proc.stderr
    result = json.loads(out.read_text())
    assert result["episodes"] == 6 and len(result["returns"]) == 6
    assert result["mean_return"] == pytest.approx(np.mean(result["returns"]))
    assert result["min_return"] <= result["mean_return"] <= result["max_return"]
    assert "return mean" in proc.stdout and str(out) in proc.stdout
    # The same weights, seed and episodes through the training-time Evaluator.
    from apex_dqn.eval_cli import load_policy

    config, weights, _ = load_policy(checkpoint)
    evaluator = Evaluator(
        env=config.env,
        network=config.network,
        obs_shape=(4,),
        num_actions=2,
        episodes=6,
        seed=11,
    )
    assert evaluator.evaluate(weights, version=0).mean_return == pytest.approx(
        result["mean_return"]
    )
    evaluator.close()


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
    assert proc.returncode == 2
    assert fragment in proc.stderr and "Traceback" not in proc.stderr
