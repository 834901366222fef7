"""The whole Ape-X pipeline on a real local Ray instance: 2 actors, 2 replay shards, CartPole."""

from __future__ import annotations

import pytest

from tests.integration.helpers import check_run_dir, run_cli


@pytest.mark.ray
@pytest.mark.slow
def test_two_actors_two_shards_learn_cartpole(tmp_path):
    out = tmp_path / "run"
    # A random policy scores about 22 on CartPole; stop once greedy evaluation reaches 200.
    proc = run_cli(
        "actors.num_actors=2",
        "replay.num_shards=2",
        "train.target_return=200",
        "train.max_seconds=120",
        "train.report_interval_s=1",
        "seed=1",
        f"output_dir={out}",
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    summary = check_run_dir(out, env_id="CartPole-v1", obs_dim=4, num_actions=2)
    assert summary["solved"], summary
    assert summary["best_eval_return"] >= 200
    assert summary["time_to_solve_s"] is not None and summary["env_steps_at_solve"] > 0
    # The status line carries every figure the user was promised.
    lines = [x for x in proc.stdout.splitlines() if "s] env " in x]
    assert lines and all(
        k in lines[-1] for k in ("env", "/s", "learner", "replay", "ratio", "eval", "lag")
    )
    # With two shards each one's size/capacity and memory; progress toward the limit first.
    assert "[s0 " in lines[-1] and "; s1 " in lines[-1]
    assert lines[-1].split("[", 1)[0].strip().endswith("%")
    assert "2 actors" in proc.stdout and "2 replay shard(s)" in proc.stdout
