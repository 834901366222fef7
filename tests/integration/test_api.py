"""The Python API trains as the command line does: in this process (runtime=local), on Ray
(twice in one process), resumed, and through the example a user runs first."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

import apex_dqn
from apex_dqn.algo.networks import build_q_network
from apex_dqn.config import ActorsConfig, Config, ConfigError, EvalConfig, TrainConfig
from apex_dqn.files.checkpoint import load_checkpoint
from tests.integration.helpers import check_run_dir

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def local_run(tmp_path_factory):
    """A short CartPole run from a ``Config`` with runtime=local (no Ray)."""
    config = Config(
        runtime="local",
        actors=ActorsConfig(num_actors=1),
        eval=EvalConfig(interval_s=2.0),
        train=TrainConfig(max_seconds=8.0, report_interval_s=2.0),
    )
    out = tmp_path_factory.mktemp("api") / "run"
    return apex_dqn.train(config, output_dir=out)


@pytest.mark.slow
def test_train_with_a_config_returns_the_runs_result(local_run):
    result = local_run
    assert result.run_dir.is_absolute() and result.run_dir.name == "run"  # output_dir=.../run
    assert result.config.runtime == "local" and result.config.actors.num_actors == 1
    summary = check_run_dir(result.run_dir, env_id="CartPole-v1", obs_dim=4, num_actions=2)
    assert result.summary == summary and result.solved is summary["solved"]
    online = load_checkpoint(result.run_dir / "checkpoint.pt")["learner"]["online"]
    assert result.weights.keys() == online.keys()
    for key, tensor in online.items():
        np.testing.assert_array_equal(result.weights[key], tensor.numpy())


@pytest.mark.slow
def test_load_policy_acts_greedily_with_the_checkpoints_weights(local_run):
    policy = apex_dqn.load_policy(local_run.run_dir)
    env = policy.make_env()
    observations = []
    obs, _ = env.reset(seed=0)
    for _ in range(200):  # states the policy itself visits
        observations.append(obs)
        obs, _, terminated, truncated, _ = env.step(policy(obs))
        if terminated or truncated:
            obs, _ = env.reset()
    env.close()
    obs_B = np.stack(observations)
    q_BA = policy.q_values(obs_B)
    actions_B = policy.act(obs_B)
    np.testing.assert_array_equal(actions_B, q_BA.argmax(axis=1))
    # The checkpoint's weights in the learner's own torch network give the same actions.
    state = load_checkpoint(local_run.run_dir / "checkpoint.pt")
    net = build_q_network(local_run.config.network, obs_shape=(4,), num_actions=2)
    net.load_state_dict(state["learner"]["online"])
    with torch.no_grad():
        torch_q_BA = net(torch.as_tensor(obs_B, dtype=torch.float32)).numpy()
    np.testing.assert_allclose(q_BA, torch_q_BA, rtol=1e-4, atol=1e-4)
    np.testing.assert_array_equal(actions_B, torch_q_BA.argmax(axis=1))


@pytest.mark.slow
def test_resume_goes_on_in_the_runs_directory(local_run, tmp_path):
    run = tmp_path / "copy"
    shutil.copytree(local_run.run_dir, run)
    with pytest.raises(ConfigError, match="a resumed run writes to the run directory"):
        apex_dqn.train([f"resume={run}"], output_dir=tmp_path / "elsewhere")
    assert not (tmp_path / "elsewhere").exists()
    result = apex_dqn.train([f"resume={run}", "train.max_seconds=6"])
    assert result.run_dir == run.resolve()
    assert result.summary["resumes"] == 1
    assert result.summary["learner_steps"] > local_run.summary["learner_steps"]
    assert result.config.train.max_seconds == 6 and result.config.runtime == "local"


@pytest.mark.slow
@pytest.mark.ray
def test_train_twice_in_one_process_on_ray(tmp_path, monkeypatch):
    """Each call starts Ray and shuts it down; the default run directories do not collide."""
    monkeypatch.chdir(tmp_path)
    overrides = [
        "actors.num_actors=1",
        "ray.num_cpus=2",
        "train.max_seconds=5",
        "train.report_interval_s=2",
        "train.plot=false",
    ]
    first = apex_dqn.train(overrides)
    second = apex_dqn.train(overrides, overrides=["seed=1"])
    assert first.run_dir.parent.parent == tmp_path / "outputs"
    assert first.run_dir.name.endswith("-CartPole-v1-seed0")
    assert second.run_dir.name.endswith("-CartPole-v1-seed1")
    # Each run's clock (time_to_solve_s, start-up milestones) starts at its own call.
    assert second.summary["started_at"] >= first.summary["started_at"] + first.summary["wall_s"]
    for result in (first, second):
        assert result.summary["learner_steps"] > 0 and result.config.runtime == "ray"
        assert json.loads((result.run_dir / "summary.json").read_text()) == result.summary


@pytest.mark.slow
@pytest.mark.ray
def test_the_example_trains_and_plays(tmp_path):
    out = tmp_path / "run"
    proc = subprocess.run(
        [
            sys.executable,
            str(ROOT / "examples" / "train_and_play.py"),
            "train.max_seconds=20",
            "train.report_interval_s=5",
            f"output_dir={out}",
        ],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=tmp_path,
        stdin=subprocess.DEVNULL,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert f"run in {out}" in proc.stdout
    played = re.search(r"greedy episodes: returns \[(.*)\], mean ([\d.]+)", proc.stdout)
    assert played, proc.stdout[-2000:]
    returns = [float(x) for x in played.group(1).split(",")]
    assert len(returns) == 5 and all(1 <= r <= 500 for r in returns)
    assert (out / "summary.json").is_file() and (out / "checkpoint.pt").is_file()


@pytest.mark.slow
def test_ctrl_c_stops_the_run_with_its_outputs_and_then_raises_keyboard_interrupt(tmp_path):
    """A loop of train() calls must stop with Ctrl-C, not go on to the next run."""
    import signal

    script = (
        "import sys, apex_dqn\n"
        "try:\n"
        "    apex_dqn.train(['runtime=local', 'train.max_seconds=120',\n"
        "                    'train.report_interval_s=0.5'], output_dir=sys.argv[1])\n"
        "except KeyboardInterrupt:\n"
        "    print('raised KeyboardInterrupt', flush=True)\n"
        "    sys.exit(7)\n"
        "print('returned', flush=True)\n"
    )
    run = tmp_path / "run"
    proc = subprocess.Popen(
        [sys.executable, "-c", script, str(run)],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
        text=True,
    )
    assert proc.stdout is not None
    for _line in proc.stdout:  # the run is under way once the first record is written
        if (run / "metrics.jsonl").exists() and run.joinpath("metrics.jsonl").stat().st_size:
            break
    proc.send_signal(signal.SIGINT)
    rest = proc.communicate(timeout=120)[0]
    assert proc.returncode == 7, rest[-2000:]
    assert "raised KeyboardInterrupt" in rest and "returned" not in rest
    summary = json.loads((run / "summary.json").read_text())
    assert summary["interrupted_by"] == signal.SIGINT
    assert (run / "checkpoint.pt").is_file()
