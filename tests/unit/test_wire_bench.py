"""benchmarks/wire.py: the bytes it reports are those of the objects that travel."""

from __future__ import annotations

import pytest

from tests.unit.benchmark_module import load_benchmark


@pytest.fixture(scope="module")
def wire():
    return load_benchmark("wire.py", "wire_bench")


def test_cartpole_pushes_whole_transitions_and_the_weights_are_the_network(wire):
    r = wire.measure(None, ["actors.envs_per_actor=2"], steps=1024)
    assert not r["frame_dedup"] and r["env_id"] == "CartPole-v1"
    # A transition holds two 4-float observations and more; pickling adds a little, not 10x.
    assert 32 < r["push_bytes_per_transition"] < 400
    # n-step transitions lag the env steps by at most a push's worth.
    assert r["transitions_pushed"] <= r["env_steps"]
    assert r["push_bytes_per_env_step"] == pytest.approx(
        r["push_bytes_per_transition"] * r["transitions_pushed"] / r["env_steps"]
    )
    # The dueling MLP (4 -> 128 -> 128, value and advantage heads), float32, and little more.
    assert 4 * (4 * 128 + 128 * 128) < r["weights_bytes"] < 4 * 40_000
    assert r["sample_bytes_per_transition"] > 2 * 4 * 4


@pytest.mark.slow
def test_pong_pushes_each_frame_once_but_samples_carry_both_stacks(wire):
    r = wire.measure("pong", ["actors.envs_per_actor=4", "actors.push_every=64"], steps=2048)
    assert r["frame_dedup"]
    frame = 84 * 84
    # One new frame per env step, not the four-frame stacks of both ends (8 frames).
    assert frame < r["push_bytes_per_env_step"] < 2 * frame
    assert r["sample_bytes_per_transition"] >= 2 * 4 * frame
    assert r["weights_bytes"] > 4 * 1_000_000  # the Nature CNN, float32
