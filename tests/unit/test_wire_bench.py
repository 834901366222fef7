"""benchmarks/wire.py: the bytes it reports are those of the objects that travel."""

from __future__ import annotations

import pytest

from tests.unit.benchmark_module import load_benchmark


@pytest.fixture(scope="module")
def wire():
    return load_benchmark("wire.py", "wire_bench")


# The dueling MLP of the CartPole defaults: 4 -> 128 -> 128, a value head 128 -> 1 and an
# advantage head 128 -> 2, weights and biases.
CARTPOLE_VALUES = (4 * 128 + 128) + (128 * 128 + 128) + (128 + 1) + (128 * 2 + 2)
# The Nature CNN (8x8/4 to 32, 4x4/2 to 64, 3x3/1 to 64 channels: 3,136 features) with dueling
# heads of 512 units, Pong's 6 actions.
NATURE_VALUES = (
    (4 * 32 * 64 + 32) + (32 * 64 * 16 + 64) + (64 * 64 * 9 + 64)
    + (3136 * 512 + 512) + (512 + 1) + (3136 * 512 + 512) + (512 * 6 + 6)
)  # fmt: skip
PICKLE_SLACK = 2_000  # names and array headers of one state dict, far below one layer's bytes


def test_cartpole_pushes_whole_transitions_and_the_weights_are_the_network(wire):
    r = wire.measure(None, ["actors.envs_per_actor=2"], steps=1024)
    assert not r["frame_dedup"] and r["env_id"] == "CartPole-v1"
    # A transition's arrays: two 4-float32 observations (32 bytes), an int64 action, a float32
    # return, discount and priority, a bool done: 53 bytes, no behaviour fields (they travel
    # only with learner.actor_correction).
    assert r["push_array_bytes_per_transition"] == 53
    # Pickling adds one batch's headers to each push: under 1,000 bytes, whatever its length.
    assert r["pushes"] > 0 and 0 < r["push_overhead_bytes_per_push"] < 1_000
    # n-step transitions lag the env steps by at most a push's worth.
    assert r["transitions_pushed"] <= r["env_steps"]
    assert r["push_bytes_per_env_step"] == pytest.approx(
        r["push_bytes_per_transition"] * r["transitions_pushed"] / r["env_steps"]
    )
    # One weights version is the online network in float32, nothing more.
    assert r["weights_values"] == CARTPOLE_VALUES
    assert 4 * CARTPOLE_VALUES < r["weights_bytes"] < 4 * CARTPOLE_VALUES + PICKLE_SLACK
    # A sampled transition carries both observations (no frame sharing on CartPole).
    assert r["sample_bytes_per_transition"] > 2 * 4 * 4


@pytest.mark.slow
def test_pong_pushes_each_frame_once_but_samples_carry_both_stacks(wire):
    r = wire.measure("pong", ["actors.envs_per_actor=4", "actors.push_every=64"], steps=2048)
    assert r["frame_dedup"]
    frame = 84 * 84
    # One new frame per env step, not the four-frame stacks of both ends (8 frames).
    assert frame < r["push_bytes_per_env_step"] < 2 * frame
    assert r["sample_bytes_per_transition"] >= 2 * 4 * frame
    # The Nature CNN in float32.
    assert r["weights_values"] == NATURE_VALUES
    assert 4 * NATURE_VALUES < r["weights_bytes"] < 4 * NATURE_VALUES + PICKLE_SLACK
