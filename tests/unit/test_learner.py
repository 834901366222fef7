"""The Learner: updates that fit targets, target-network period, skipped non-finite updates."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch

from apex_dqn.algo.learner import Learner, StepResult
from apex_dqn.algo.torch_compat import resolve_amp, resolve_device
from apex_dqn.config import AlgoConfig, LearnerConfig, NetworkConfig, ReplayConfig
from apex_dqn.core.types import TransitionBatch
from tests.unit.learner_helpers import cartpole_batch, small_learner


def test_updates_fit_terminal_targets_and_priorities_shrink():
    learner = small_learner(lr=1e-2)
    batch = cartpole_batch()
    _, first = learner.step(learner.stage(batch, np.ones(len(batch), np.float32)))
    for _ in range(300):
        _, last = learner.step(learner.stage(batch, np.ones(len(batch), np.float32)))
    assert last.shape == (64,)
    assert last.mean() < 0.3 * first.mean()
    assert learner.learner_steps == 301


def test_target_network_copied_every_period():
    learner = small_learner(target_update_period=5, lr=1e-2)
    batch = cartpole_batch()
    w = np.ones(len(batch), np.float32)
    for _ in range(4):
        learner.step(learner.stage(batch, w))
    online, target = learner.online.state_dict(), learner.target.state_dict()
    assert any(not torch.equal(online[k], target[k]) for k in online)
    learner.step(learner.stage(batch, w))
    online, target = learner.online.state_dict(), learner.target.state_dict()
    assert all(torch.equal(online[k], target[k]) for k in online)


def test_non_finite_loss_skips_the_update():
    learner = small_learner()
    before = {k: v.clone() for k, v in learner.online.state_dict().items()}
    batch = cartpole_batch()
    batch.return_B[0] = np.nan
    metrics, _ = learner.step(learner.stage(batch, np.ones(len(batch), np.float32)))
    assert metrics.skipped and learner.skipped_updates == 1
    after = learner.online.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before)


def test_beta_anneals_linearly_to_one():
    learner = small_learner()
    assert learner.beta() == pytest.approx(0.4)
    batch, w = cartpole_batch(), np.ones(64, np.float32)
    for _ in range(50):
        learner.step(learner.stage(batch, w))
    assert learner.beta() == pytest.approx(0.7)
    for _ in range(100):
        learner.step(learner.stage(batch, w))
    assert learner.beta() == pytest.approx(1.0)


def _gradient(batch: TransitionBatch, weights_B: np.ndarray) -> torch.Tensor:
    """The gradient of one update from the same initial network (clipping off), flattened."""
    learner = small_learner(grad_clip=0.0)
    learner.step(learner.stage(batch, weights_B.astype(np.float32)))
    return torch.cat([p.grad.flatten() for p in learner.online.parameters()])


def test_importance_weights_weight_each_samples_gradient():
    """The loss is the weighted mean of per-sample losses, so the gradient of a batch with
    weights w is sum_i w_i g_i / B, g_i being sample i's gradient alone (weight 1, others 0):
    checked at weights strictly between 0 and 1, on three samples."""
    batch = cartpole_batch()
    n = len(batch)
    picked = {3: 0.3, 10: 0.7, 41: 0.15}
    weights = np.zeros(n)
    for i, w in picked.items():
        weights[i] = w
    alone = {i: _gradient(batch, np.eye(n)[i]) for i in picked}
    expected = sum(w * alone[i] for i, w in picked.items())
    got = _gradient(batch, weights)
    assert got.abs().sum() > 0
    torch.testing.assert_close(got, expected, rtol=1e-4, atol=1e-7)
    # A weight of 0.3 is not a weight of 1: the scaling is there, not just a mask.
    assert not torch.allclose(_gradient(batch, (weights > 0).astype(float)), got)


def test_state_round_trip_continues_identically():
    a = small_learner()
    batch, w = cartpole_batch(), np.ones(64, np.float32)
    for _ in range(10):
        a.step(a.stage(batch, w))
    b = small_learner()
    b.load_state_dict(a.state_dict())
    assert b.learner_steps == 10
    _, pa = a.step(a.stage(batch, w))
    _, pb = b.step(b.stage(batch, w))
    np.testing.assert_allclose(pa, pb, rtol=1e-6)


def test_device_resolution_falls_back_to_cpu():
    expected = "cuda" if torch.cuda.is_available() else "cpu"
    assert resolve_device("auto").type == expected
    if not torch.cuda.is_available():
        with pytest.raises(RuntimeError, match="no CUDA device"):
            resolve_device("cuda")


def test_actor_correction_multiplies_weights():
    """The staged weights are the importance weights times the per-actor correction, worked
    out here by hand, and the update is the plain learner's update with those weights."""
    batch = cartpole_batch(behaviour=True)
    batch.done_B[:] = True
    batch.epsilon_B[::2] = 0.1  # both actors' data: the mixture differs from each actor
    # Half the samples from each actor: the mixture's epsilon is 0.25; 2 actions; each sample
    # has m - 1 = 2 later actions, g of them greedy.
    e_mix, eps_B, g_B = 0.25, batch.epsilon_B.astype(np.float64), batch.later_greedy_B
    r_greedy_B = (1 - e_mix + e_mix / 2) / (1 - eps_B + eps_B / 2)
    r_random_B = e_mix / eps_B
    expected_B = np.minimum(r_greedy_B**g_B * r_random_B ** (2 - g_B), 1.0)
    assert 0.3 < expected_B.min() < 0.9 and expected_B.max() == 1.0  # the correction bites
    importance_B = np.linspace(0.5, 1.0, 64).astype(np.float32)
    plain, corrected = small_learner(), small_learner(actor_correction=True)
    staged = corrected.stage(batch, importance_B)
    np.testing.assert_allclose(staged.weight.numpy(), importance_B * expected_B, rtol=1e-5)
    mc, pc = corrected.step(staged)
    mp, pp = plain.step(plain.stage(batch, (importance_B * expected_B).astype(np.float32)))
    assert mc.loss == pytest.approx(mp.loss, rel=1e-5)
    np.testing.assert_allclose(pc, pp, rtol=1e-5)
    for p_c, p_p in zip(corrected.online.parameters(), plain.online.parameters(), strict=True):
        torch.testing.assert_close(p_c, p_p)


def test_rows_restored_without_behaviour_fields_leave_the_actor_mixture_alone():
    """A run resumed with the correction newly on reloads rows whose fields are zeros (steps 0):
    they must not count as data of the actor with the smallest epsilon."""
    real = cartpole_batch(behaviour=True)
    real.epsilon_B[::2] = 0.1
    restored = cartpole_batch(behaviour=True)
    for name in ("greedy_B", "epsilon_B", "steps_B", "later_greedy_B"):
        getattr(restored, name)[:] = 0
    mixed = TransitionBatch.concatenate([real, restored])
    a, b = small_learner(actor_correction=True), small_learner(actor_correction=True)
    a.stage(real, np.ones(64, np.float32))
    staged = b.stage(mixed, np.ones(128, np.float32))
    assert a._mixture is not None and b._mixture is not None
    np.testing.assert_array_equal(a._mixture.shares(), b._mixture.shares())
    np.testing.assert_array_equal(staged.weight.numpy()[64:], 1.0)  # no correction for them


def test_actor_correction_needs_the_behaviour_fields():
    batch = dataclasses.replace(cartpole_batch(behaviour=True), epsilon_B=None)
    with pytest.raises(ValueError, match="behaviour fields"):
        small_learner(actor_correction=True).stage(batch, np.ones(64, np.float32))
    small_learner().stage(batch, np.ones(64, np.float32))  # without the correction it needs none


def test_seed_fixes_the_initial_network():
    a, b = small_learner(), small_learner()
    for k, v in a.online.state_dict().items():
        assert torch.equal(v, b.online.state_dict()[k])
    other = Learner(
        obs_shape=(4,),
        num_actions=2,
        network=NetworkConfig(hidden_sizes=[32, 32]),
        algo=AlgoConfig(),
        learner=LearnerConfig(device="cpu"),
        replay=ReplayConfig(),
        seed=1,
    )
    assert not torch.equal(
        next(iter(a.online.state_dict().values())), next(iter(other.online.state_dict().values()))
    )


def test_staging_ahead_does_not_change_the_updates():
    """Three batches staged before any update (as the feeder stages ahead) give the updates
    that staging each right before its own update gives."""
    a, b = small_learner(), small_learner()
    batches = [cartpole_batch(seed=k) for k in range(3)]
    w = np.linspace(0.2, 1.0, 64).astype(np.float32)
    staged = [a.stage(x, w) for x in batches]
    for x, s in zip(batches, staged, strict=True):
        result = a.step(s)
        assert isinstance(result, StepResult) and result.priorities_B.dtype == np.float32
        mb, pb = b.step(b.stage(x, w))
        assert result.metrics == mb
        np.testing.assert_array_equal(result.priorities_B, pb)
    assert not a.stages_async  # CPU: staging only wraps arrays


def test_a_step_without_a_batch_takes_the_gradient_the_hook_gives():
    """A learner of a group that brings no batch: ``step(None, reduce_gradients)`` takes the
    step of the gradient the hook leaves (there, the group's average) and returns None."""
    a, b = small_learner(lr=1e-2), small_learner(lr=1e-2)
    w = np.ones(64, np.float32)
    for k in range(3):
        grads: list[torch.Tensor] = []

        def keep(grads: list[torch.Tensor] = grads) -> None:
            grads.extend(p.grad.clone() for p in a.online.parameters())

        def give(grads: list[torch.Tensor] = grads) -> None:
            for p, g in zip(b.online.parameters(), grads, strict=True):
                p.grad = g.clone()

        assert a.step(a.stage(cartpole_batch(seed=k), w), keep) is not None
        assert b.step(None, give) is None
    assert b.learner_steps == a.learner_steps == 3
    for key, value in a.online.state_dict().items():
        assert torch.equal(value, b.online.state_dict()[key]), key
    for key, value in a.target.state_dict().items():
        assert torch.equal(value, b.target.state_dict()[key]), key


def test_reduce_gradients_runs_before_the_finite_check():
    """The hook runs between the backward pass and the clipping: a non-finite gradient it
    leaves (another learner's, in a group) skips the update."""
    learner = small_learner()
    before = {k: v.clone() for k, v in learner.online.state_dict().items()}

    def poison() -> None:
        for p in learner.online.parameters():
            p.grad = torch.full_like(p, float("nan"))

    metrics, _ = learner.step(learner.stage(cartpole_batch(), np.ones(64, np.float32)), poison)
    assert metrics.skipped and learner.skipped_updates == 1 and np.isfinite(metrics.loss)
    assert all(torch.equal(before[k], v) for k, v in learner.online.state_dict().items())


def test_amp_updates_track_float32():
    """bf16 autocast changes the numbers (about 3 significant digits), not the learning."""
    ref, learner = small_learner(lr=1e-2), small_learner(lr=1e-2, amp=True)
    assert learner.amp and not ref.amp
    batch = cartpole_batch()
    w = np.ones(len(batch), np.float32)
    for _ in range(50):
        m_ref, p_ref = ref.step(ref.stage(batch, w))
        m, priorities = learner.step(learner.stage(batch, w))
    assert priorities.dtype == np.float32 and np.isfinite(m.loss)
    assert not np.array_equal(priorities, p_ref)  # the forward passes did run in bf16
    assert m.loss == pytest.approx(m_ref.loss, rel=0.1)


@pytest.mark.slow
def test_compiled_network_learns_like_eager():
    eager, compiled = small_learner(lr=1e-2), small_learner(lr=1e-2, compile=True)
    batch = cartpole_batch()
    w = np.ones(len(batch), np.float32)
    for _ in range(5):
        m_eager, p_eager = eager.step(eager.stage(batch, w))
        m_comp, p_comp = compiled.step(compiled.stage(batch, w))
    assert m_comp.loss == pytest.approx(m_eager.loss, rel=1e-4)
    np.testing.assert_allclose(p_comp, p_eager, rtol=1e-3, atol=1e-5)
    # The compiled callable shares the parameters: a state round trip reaches it.
    state = compiled.state_dict()
    assert set(state["online"]) == set(eager.state_dict()["online"])


def test_bootstrapped_target_uses_online_argmax_and_target_value():
    """Non-terminal transitions: the priority is |G + gamma^m Q_target(s', argmax_a
    Q_online(s', a)) - Q_online(s, a)|, computed here from the two networks by hand. Swapping
    the networks' roles (or bootstrapping from the online net) gives other numbers."""
    learner = small_learner()
    with torch.no_grad():  # make target and online disagree
        for p in learner.target.parameters():
            p.add_(torch.randn_like(p) * 0.5)
    batch = cartpole_batch()
    batch.done_B[:] = False
    obs, next_obs = torch.as_tensor(batch.obs_B), torch.as_tensor(batch.next_obs_B)
    with torch.no_grad():
        q_sa = learner.online(obs).gather(1, torch.as_tensor(batch.action_B)[:, None])[:, 0]
        best = learner.online(next_obs).argmax(1)
        next_v = learner.target(next_obs).gather(1, best[:, None])[:, 0]
        swapped_best = learner.target(next_obs).argmax(1)
        swapped_v = learner.online(next_obs).gather(1, swapped_best[:, None])[:, 0]
    ret, disc = torch.as_tensor(batch.return_B), torch.as_tensor(batch.discount_B)
    want = (ret + disc * next_v - q_sa).abs().numpy()
    swapped = (ret + disc * swapped_v - q_sa).abs().numpy()
    assert np.abs(want - swapped).max() > 1e-2  # the test can tell the two apart
    _, priorities = learner.step(learner.stage(batch, np.ones(len(batch), np.float32)))
    np.testing.assert_allclose(priorities, want, rtol=1e-4, atol=1e-5)


def test_polyak_target_moves_by_tau_after_every_update():
    learner = small_learner(target_update_tau=0.25, target_update_period=1_000_000, lr=1e-2)
    batch, w = cartpole_batch(), np.ones(64, np.float32)
    before = {k: v.clone() for k, v in learner.target.state_dict().items()}
    learner.step(learner.stage(batch, w))
    online, target = learner.online.state_dict(), learner.target.state_dict()
    for key, old in before.items():
        torch.testing.assert_close(target[key], 0.75 * old + 0.25 * online[key])
    assert any(not torch.equal(online[k], target[k]) for k in online)


def test_update_ratio_is_the_relative_size_of_adams_step():
    learner = small_learner(lr=1e-3)
    batch, w = cartpole_batch(), np.ones(64, np.float32)
    before = torch.cat([p.detach().reshape(-1).clone() for p in learner.online.parameters()])
    metrics, _ = learner.step(learner.stage(batch, w))  # update 0 is measured
    after = torch.cat([p.detach().reshape(-1) for p in learner.online.parameters()])
    want = float((after - before).norm() / before.norm())
    assert metrics.update_ratio == pytest.approx(want, rel=1e-4)
    assert 0 < metrics.update_ratio < 0.1


@pytest.mark.parametrize("native_bf16", [True, False])
def test_amp_auto_follows_the_cpu(monkeypatch, native_bf16):
    monkeypatch.setattr(torch.ops.mkldnn, "_is_mkldnn_bf16_supported", lambda: native_bf16)
    cpu = torch.device("cpu")
    assert resolve_amp("auto", cpu) == native_bf16
    assert resolve_amp(True, cpu) and not resolve_amp(False, cpu)
    assert not resolve_amp("auto", torch.device("cuda"))


def test_amp_auto_is_off_when_the_probe_is_missing(monkeypatch):
    def missing() -> bool:
        raise RuntimeError("no such op")

    monkeypatch.setattr(torch.ops.mkldnn, "_is_mkldnn_bf16_supported", missing)
    assert not resolve_amp("auto", torch.device("cpu"))


def test_the_first_update_and_every_250th_count_the_dead_units():
    learner = small_learner()
    batch, w = cartpole_batch(), np.ones(64, np.float32)
    first = learner.step(learner.stage(batch, w)).metrics
    assert 0.0 <= first.dead_units <= first.dead_units_max <= 1.0
    with torch.no_grad():  # kill every unit of the first hidden layer
        learner.online.torso[1].bias.fill_(-1e6)
    for _ in range(249):
        kept = learner.step(learner.stage(batch, w)).metrics
    assert kept.dead_units == first.dead_units  # not counted in between
    counted = learner.step(learner.stage(batch, w)).metrics  # update 251
    assert counted.dead_units_max == 1.0 and counted.dead_units >= 0.5
