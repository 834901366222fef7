"""The frame replay: each Atari frame stored once, stacks rebuilt exactly, samples equal to a
plain replay's on the same data (episode borders, life loss, truncation and ring wrap-around)."""

from __future__ import annotations

import numpy as np
import pytest

from apex_dqn.algo.actor import Actor
from apex_dqn.config import ActorsConfig, AlgoConfig, AtariConfig, EnvConfig, NetworkConfig
from apex_dqn.core.types import FrameBatch, TransitionBatch
from apex_dqn.replay import FramePrioritizedReplay, PrioritizedReplay

pytest.importorskip("ale_py")

# Breakout with a 60-step limit: life losses (terminal for training), game ends and truncations.
BREAKOUT = EnvConfig(id="ALE/Breakout-v5", max_episode_steps=60, atari=AtariConfig())


def _actor(frames: bool, *, seed: int = 0, envs: int = 3, vector_mode: str = "sync") -> Actor:
    return Actor(
        actor_index=0,
        env=BREAKOUT,
        network=NetworkConfig(torso="nature"),
        algo=AlgoConfig(n_step=3),
        actors=ActorsConfig(
            num_actors=1, envs_per_actor=envs, push_every=32, vector_mode=vector_mode
        ),
        num_actions=4,
        obs_shape=(4, 84, 84),
        obs_dtype="uint8",
        seed=seed,
        frame_batches=frames,
        behaviour=True,  # the whole path, the actor correction's fields included
    )


def _pushes(vector_mode: str = "sync") -> tuple[list[TransitionBatch], list[FrameBatch]]:
    """The same 150 vector steps from two identically seeded actors, stacks and frames."""
    plain, framed = _actor(False, vector_mode=vector_mode), _actor(True, vector_mode=vector_mode)
    stacks, frames = [], []
    for _ in range(5):
        stacks += plain.run_steps(30)[0]
        frames += framed.run_steps(30)[0]
    plain.close()
    framed.close()
    return stacks, frames


@pytest.fixture(scope="module")
def pushes() -> tuple[list[TransitionBatch], list[FrameBatch]]:
    return _pushes()


def test_frame_batch_scalars_are_all_the_non_stack_fields():
    names = set(TransitionBatch.empty((4, 84, 84), np.uint8, behaviour=True).arrays())
    assert set(FrameBatch.SCALARS) == names - {"obs_B", "next_obs_B"}


def test_actor_pushes_carry_steps_and_later_greedy(pushes):
    stacks, _ = pushes
    batch = TransitionBatch.concatenate(stacks)
    assert batch.steps_B.dtype == np.uint8 and batch.later_greedy_B.dtype == np.uint8
    # discount = gamma ** m (AlgoConfig's gamma), 1 <= m <= n = 3, g <= m - 1.
    np.testing.assert_allclose(batch.discount_B, AlgoConfig().gamma ** batch.steps_B, rtol=1e-6)
    assert batch.steps_B.min() >= 1 and batch.steps_B.max() == 3 and (batch.steps_B < 3).any()
    assert np.all(batch.later_greedy_B <= batch.steps_B - 1) and batch.later_greedy_B.max() == 2


def test_frame_replay_returns_steps_and_later_greedy_as_stored():
    rng = np.random.default_rng(4)
    num, stack = 12, 4
    frames_F = rng.integers(0, 256, (num + stack, 84, 84), dtype=np.uint8)
    obs_idx_BS = np.arange(num)[:, None] + np.arange(stack)[None]
    batch = FrameBatch(
        frames_F=frames_F,
        keys_F=np.arange(num + stack, dtype=np.int64),
        stream=7,
        obs_idx_BS=obs_idx_BS,
        next_idx_BS=obs_idx_BS + 1,
        action_B=np.arange(num, dtype=np.int64),  # the row number, to find it after sampling
        return_B=np.zeros(num, np.float32),
        discount_B=np.ones(num, np.float32),
        done_B=np.zeros(num, bool),
        priority_B=np.ones(num, np.float32),
        greedy_B=np.ones(num, bool),
        epsilon_B=np.full(num, 0.1, np.float32),
        steps_B=(1 + np.arange(num) % 3).astype(np.uint8),
        later_greedy_B=(np.arange(num) % 3 // 2).astype(np.uint8),
    )
    replay = FramePrioritizedReplay(behaviour=True, capacity=32, obs_shape=(stack, 84, 84), seed=0)
    replay.add(batch)
    got = replay.sample(48, beta=0.4).batch
    row_B = got.action_B
    assert got.steps_B.dtype == np.uint8 and got.later_greedy_B.dtype == np.uint8
    np.testing.assert_array_equal(got.steps_B, batch.steps_B[row_B])
    np.testing.assert_array_equal(got.later_greedy_B, batch.later_greedy_B[row_B])
    np.testing.assert_array_equal(got.obs_B, frames_F[obs_idx_BS[row_B]])


def test_frame_batches_rebuild_the_env_stacks_exactly(pushes):
    stacks, frames = pushes
    assert len(stacks) == len(frames) >= 10
    for plain, framed in zip(stacks, frames, strict=True):
        assert isinstance(framed, FrameBatch)
        rebuilt = framed.to_transitions()
        for name, array in plain.arrays().items():
            np.testing.assert_array_equal(getattr(rebuilt, name), array, err_msg=name)
    done = np.concatenate([b.done_B for b in stacks])
    assert done.any() and (~done).any()  # life losses and game ends happened
    # Within a push a frame travels once: with pushes of about 11 steps per env, under 2
    # frames per transition instead of 2 x 4 (the shard drops the repeats across pushes).
    assert sum(len(f.frames_F) for f in frames) < 2 * sum(len(f) for f in frames)


def _pair(capacity: int, frame_capacity: int) -> tuple[PrioritizedReplay, FramePrioritizedReplay]:
    kw = {"capacity": capacity, "obs_shape": (4, 84, 84), "obs_dtype": np.uint8, "seed": 5}
    kw["behaviour"] = True
    return PrioritizedReplay(**kw), FramePrioritizedReplay(**kw, frame_capacity=frame_capacity)


def test_samples_equal_a_plain_replay_through_wrap_around(pushes):
    stacks, frames = pushes
    plain, framed = _pair(capacity=200, frame_capacity=400)
    for s, f in zip(stacks, frames, strict=True):
        plain.add(s)
        framed.add(f)
    assert plain.stats().added == framed.stats().added > 400  # the rings wrapped
    assert framed._frames_added > framed._frame_capacity
    for _ in range(5):
        a, b = plain.sample(64, beta=0.5), framed.sample(64, beta=0.5)
        np.testing.assert_array_equal(a.ids_B, b.ids_B)
        np.testing.assert_array_equal(a.weights_B, b.weights_B)
        for name, array in a.batch.arrays().items():
            np.testing.assert_array_equal(getattr(b.batch, name), array, err_msg=name)
        new = np.linspace(0.1, 3.0, 64)
        assert plain.update_priorities(a.ids_B, new) == framed.update_priorities(b.ids_B, new)


def test_each_frame_is_stored_once_across_pushes(pushes):
    _, frames = pushes
    replay = FramePrioritizedReplay(behaviour=True, capacity=10_000, obs_shape=(4, 84, 84), seed=0)
    for f in frames:
        replay.add(f)
    transitions = sum(len(f) for f in frames)
    sent = sum(len(f.frames_F) for f in frames)
    # One new frame per env step, plus a final frame per episode end, plus the first stacks.
    assert replay.frames_reused > 0
    assert replay._frames_added < sent
    assert replay._frames_added <= 1.1 * transitions + 3 * 4
    naive = 2 * transitions * 4 * 84 * 84
    assert replay._frames_added * 84 * 84 < naive / 7


def test_stacks_whose_frames_were_overwritten_are_never_returned(pushes):
    stacks, frames = pushes
    # A frame ring barely larger than the transition ring: old transitions lose frames.
    plain, framed = _pair(capacity=300, frame_capacity=300)
    for s, f in zip(stacks, frames, strict=True):
        plain.add(s)
        framed.add(f)
    for _ in range(10):
        sample = framed.sample(64, beta=0.4)
        slots = sample.ids_B % 300
        np.testing.assert_array_equal(plain._ids[slots], sample.ids_B)
        ref = plain._rows(slots)
        np.testing.assert_array_equal(sample.batch.obs_B, ref.obs_B)
        np.testing.assert_array_equal(sample.batch.next_obs_B, ref.next_obs_B)
    assert len(framed) < len(plain)  # those found stale were dropped
    stats = framed.stats()
    assert stats.size == len(framed) and stats.priority_min < np.inf


def test_state_round_trip_gives_the_same_samples(pushes):
    _, frames = pushes
    replay = FramePrioritizedReplay(behaviour=True, capacity=256, obs_shape=(4, 84, 84), seed=1)
    for f in frames[:-2]:
        replay.add(f)
    state = replay.state_dict()
    other = FramePrioritizedReplay(behaviour=True, capacity=256, obs_shape=(4, 84, 84), seed=99)
    other.load_state_dict(state)
    for f in frames[-2:]:  # deduplication continues from the restored stream tails
        replay.add(f)
        other.add(f)
    assert other.frames_reused > 0
    a, b = replay.sample(32, 0.4), other.sample(32, 0.4)
    np.testing.assert_array_equal(a.ids_B, b.ids_B)
    np.testing.assert_array_equal(a.batch.obs_B, b.batch.obs_B)
    np.testing.assert_array_equal(a.batch.next_obs_B, b.batch.next_obs_B)


def test_frame_replay_rejects_stacks_and_bad_indices(pushes):
    stacks, frames = pushes
    replay = FramePrioritizedReplay(behaviour=True, capacity=64, obs_shape=(4, 84, 84))
    with pytest.raises(TypeError, match="FrameBatch"):
        replay.add(stacks[0])
    bad = frames[0]
    broken = FrameBatch(**{**bad.__dict__, "obs_idx_BS": bad.obs_idx_BS + len(bad.frames_F)})
    with pytest.raises(ValueError, match="obs_idx_BS"):
        replay.add(broken)
    with pytest.raises(ValueError, match="uint8"):
        FramePrioritizedReplay(behaviour=True, capacity=8, obs_shape=(4,))


def test_snapshot_file_round_trip(pushes, tmp_path):
    from apex_dqn.replay.snapshot import load_snapshot, save_snapshot

    _, frames = pushes
    replay = FramePrioritizedReplay(behaviour=True, capacity=128, obs_shape=(4, 84, 84), seed=3)
    for f in frames:
        replay.add(f)
    path = save_snapshot(tmp_path / "shard0.npz", replay.state_dict())
    other = FramePrioritizedReplay(behaviour=True, capacity=128, obs_shape=(4, 84, 84), seed=3)
    other.load_state_dict(load_snapshot(path))
    assert len(other) == len(replay) and other.stats().bytes == replay.stats().bytes
    a, b = replay.sample(16, 0.4), other.sample(16, 0.4)
    np.testing.assert_array_equal(a.batch.obs_B, b.batch.obs_B)
    np.testing.assert_array_equal(a.batch.next_obs_B, b.batch.next_obs_B)


def test_frame_batches_rebuild_ale_vector_env_stacks_exactly():
    """With ale-py's C++ vector env (actors.vector_mode=ale) the stacks the actor saw are
    rebuilt exactly too: episode starts repeat the first frame, as the frame keys assume."""

    stacks, frames = _pushes(vector_mode="ale")
    assert len(stacks) == len(frames) >= 10
    for want, got in zip(stacks, frames, strict=True):
        rebuilt = got.to_transitions()
        for name, array in want.arrays().items():
            np.testing.assert_array_equal(getattr(rebuilt, name), array, err_msg=name)
    done = np.concatenate([b.done_B for b in stacks])
    assert done.any() and (~done).any()


def test_a_frame_batch_with_other_fields_is_refused_before_a_frame_is_stored(pushes):
    _, frames = pushes
    replay = FramePrioritizedReplay(capacity=256, obs_shape=(4, 84, 84), seed=1)  # no behaviour
    with pytest.raises(ValueError, match="actor_correction"):
        replay.add(frames[0])  # the pushes carry the behaviour fields
    assert replay._frames_added == 0 and not replay._tails and len(replay) == 0
