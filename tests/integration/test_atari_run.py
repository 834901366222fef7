"""An Atari run through the real CLI on real Ray: frames, the Nature CNN and uint8 replay."""

from __future__ import annotations

import json

import pytest

from apex_dqn.files.checkpoint import load_checkpoint
from tests.integration.helpers import run_cli
from tests.unit.png_helpers import TAB_BLUE, pixels_of

pytest.importorskip("ale_py")


@pytest.mark.slow
@pytest.mark.ray
def test_pong_experiment_runs_end_to_end_on_frames_and_the_nature_cnn(tmp_path):
    """The wiring of experiment=pong (frames, the Nature CNN, the frame replay, whole-game
    evaluations), not learning: 4,000 env steps teach Pong nothing measurable. Learning Pong
    is benchmarks/pong.py's (docs/atari.md)."""
    out = tmp_path / "pong"
    proc = run_cli(
        "experiment=pong",
        "actors.num_actors=1",
        "actors.envs_per_actor=4",
        "actors.push_every=64",
        "replay.capacity=4000",
        "replay.min_size_to_learn=512",
        "learner.batch_size=32",
        "learner.target_update_period=20",
        "env.max_episode_steps=150",
        "eval.episodes=1",
        "eval.interval_s=1",
        "train.max_env_steps=4000",
        "train.max_seconds=90",
        "train.report_interval_s=1",
        f"output_dir={out}",
        timeout=240,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    summary = json.loads((out / "summary.json").read_text())
    assert summary["env_id"] == "ALE/Pong-v5"
    assert summary["env_steps"] >= 4000 and summary["learner_steps"] > 0
    records = [json.loads(x) for x in (out / "metrics.jsonl").read_text().splitlines()]
    # Evaluations play whole (here: truncated) games with unclipped rewards: 150 agent steps
    # (600 frames, about 10 s of play) hold one or two points, each worth exactly -1 or +1.
    evals = [r for r in records if "eval/mean_length" in r]
    assert evals and all(r["eval/mean_length"] == 150 for r in evals)
    assert all(float(r["eval/mean_return"]).is_integer() for r in evals)  # one episode each
    assert all(-3 <= r["eval/mean_return"] <= 2 for r in evals)
    # Frames stored once: under two 84x84 frames per transition of capacity (stacked obs and
    # next obs would take eight).
    assert records[-1]["replay/bytes"] < 4000 * 2 * 84 * 84
    assert records[-1]["replay/shard0/capacity"] == 4000
    ckpt = load_checkpoint(out / "checkpoint.pt")
    assert list(ckpt["env"]["obs_shape"]) == [4, 84, 84] and ckpt["env"]["obs_dtype"] == "uint8"
    assert "torso.0.weight" in ckpt["learner"]["online"]  # the Nature CNN's first convolution
    # The evaluations' curve drawn: two or more points make a line across both panels (over
    # 1,300 pixels of its colour; a plot without evaluations has about 70, in its legend).
    assert len(evals) >= 2 and pixels_of(out / "learning_curve.png", TAB_BLUE) > 500
