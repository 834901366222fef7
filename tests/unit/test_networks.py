"""Tests for the Q-network torsos, the dueling head and numpy weight shipping."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from apex_dqn.algo.networks import ChannelNorm, QNetwork, dead_units, get_weights, set_weights


@pytest.mark.parametrize("dueling", [True, False])
def test_mlp_output_shape(dueling: bool) -> None:
    net = QNetwork(obs_shape=(4,), num_actions=3, hidden_sizes=(32, 16), dueling=dueling)
    q_BA = net(torch.randn(5, 4))
    assert q_BA.shape == (5, 3)
    assert q_BA.dtype == torch.float32


def test_mlp_flattens_multi_dim_obs() -> None:
    net = QNetwork(obs_shape=(2, 3), num_actions=2, hidden_sizes=(8,))
    assert net(torch.randn(7, 2, 3)).shape == (7, 2)


@pytest.mark.parametrize("dueling", [True, False])
def test_nature_output_shape_and_uint8_scaling(dueling: bool) -> None:
    torch.manual_seed(0)
    net = QNetwork(obs_shape=(4, 84, 84), num_actions=6, torso="nature", dueling=dueling)
    frames = torch.randint(0, 256, (2, 4, 84, 84), dtype=torch.uint8)
    q_BA = net(frames)
    assert q_BA.shape == (2, 6)
    assert q_BA.dtype == torch.float32
    # uint8 frames and the same values as floats give the same Q (scaling happens inside).
    torch.testing.assert_close(net(frames.float()), q_BA)
    assert net.torso(torch.zeros(1, 4, 84, 84)).shape == (1, 3136)


def test_dueling_identity() -> None:
    torch.manual_seed(0)
    net = QNetwork(obs_shape=(5,), num_actions=4, hidden_sizes=(16,))
    obs = torch.randn(8, 5)
    with torch.no_grad():
        features = net.torso(obs)
        value_B1 = net.value_head(features)
        adv_BA = net.advantage_head(features)
        q_BA = net(obs)
    assert value_B1.shape == (8, 1)
    assert adv_BA.shape == (8, 4)
    # Q - V = A - mean_a A, which has zero mean over actions.
    torch.testing.assert_close(q_BA - value_B1, adv_BA - adv_BA.mean(dim=1, keepdim=True))
    torch.testing.assert_close((q_BA - value_B1).mean(dim=1), torch.zeros(8), atol=1e-6, rtol=0)
    assert (adv_BA.mean(dim=1).abs() > 1e-4).any()  # the raw advantages are not already centred


def test_weights_round_trip_gives_identical_outputs() -> None:
    torch.manual_seed(0)
    src = QNetwork(obs_shape=(4, 84, 84), num_actions=3, torso="nature")
    torch.manual_seed(1)
    dst = QNetwork(obs_shape=(4, 84, 84), num_actions=3, torso="nature")
    frames = torch.randint(0, 256, (2, 4, 84, 84), dtype=torch.uint8)
    assert not torch.equal(src(frames), dst(frames))
    weights = get_weights(src)
    assert all(isinstance(v, np.ndarray) for v in weights.values())
    for v in weights.values():
        v.setflags(write=False)  # as Ray's zero-copy arrays arrive
    set_weights(dst, weights)
    assert torch.equal(src(frames), dst(frames))
    # The numpy copies are independent of the source parameters.
    with torch.no_grad():
        next(src.parameters()).add_(1.0)
    assert not torch.equal(src(frames), dst(frames))


def test_set_weights_rejects_mismatched_keys() -> None:
    net = QNetwork(obs_shape=(3,), num_actions=2, hidden_sizes=(4,))
    other = QNetwork(obs_shape=(3,), num_actions=2, hidden_sizes=(4,), dueling=False)
    with pytest.raises(RuntimeError):
        set_weights(net, get_weights(other))


def test_invalid_torso_and_shapes() -> None:
    with pytest.raises(ValueError, match="mlp, nature"):
        QNetwork(obs_shape=(4,), num_actions=2, torso="resnet")
    with pytest.raises(ValueError, match="C, H, W"):
        QNetwork(obs_shape=(4,), num_actions=2, torso="nature")


@pytest.mark.parametrize("dueling", [True, False])
def test_minatar_torso_is_the_reference_network(dueling: bool) -> None:
    net = QNetwork(obs_shape=(6, 10, 10), num_actions=4, torso="minatar", dueling=dueling)
    grid = torch.randint(0, 2, (3, 6, 10, 10), dtype=torch.uint8)
    q_BA = net(grid)
    assert q_BA.shape == (3, 4) and q_BA.dtype == torch.float32
    # 0/1 grids are not rescaled: uint8 and float inputs give the same Q.
    torch.testing.assert_close(net(grid.float()), q_BA)
    conv, linear = net.torso[0], net.torso[3]
    assert (conv.in_channels, conv.out_channels, conv.kernel_size, conv.stride) == (
        6,
        16,
        (3, 3),
        (1, 1),
    )
    assert (linear.in_features, linear.out_features) == (16 * 8 * 8, 128)
    with pytest.raises(ValueError, match="minatar torso needs"):
        QNetwork(obs_shape=(400,), num_actions=4, torso="minatar")


def test_dead_units_counts_units_no_observation_activates() -> None:
    torch.manual_seed(0)
    net = QNetwork(obs_shape=(4,), num_actions=2, hidden_sizes=(8, 8))
    first = net.torso[1]
    with torch.no_grad():
        first.weight[:3] = 0.0
        first.bias[:3] = -1.0  # three of the first layer's 8 units never fire
    fractions = dead_units(net, torch.randn(256, 4))
    assert fractions["torso.2"] == pytest.approx(3 / 8)
    assert 3 / 16 <= fractions["all"] <= 1.0  # the second layer may lose some of its own


def test_dead_units_counts_a_convolution_channel_as_one_unit() -> None:
    torch.manual_seed(0)
    net = QNetwork(obs_shape=(4, 10, 10), num_actions=3, torso="minatar")
    conv = net.torso[0]
    with torch.no_grad():
        conv.bias[:4] = -1e6  # 4 of 16 channels dead at every position
        conv.bias[4:] = 1e6  # the rest fire everywhere
    obs = torch.randint(0, 2, (32, 4, 10, 10)).float()
    assert dead_units(net, obs)["torso.1"] == pytest.approx(4 / 16)
    assert not any(h for m in net.modules() for h in m._forward_hooks.values())  # cleaned up


def test_layer_norm_precedes_every_hidden_relu_of_the_minatar_and_nature_networks() -> None:
    for torso, shape, norms in (("minatar", (4, 10, 10), 2), ("nature", (4, 84, 84), 5)):
        net = QNetwork(obs_shape=shape, num_actions=3, torso=torso, layer_norm=True)
        layers = [m for m in net.modules() if not isinstance(m, nn.Sequential | QNetwork)]
        relus = [i for i, m in enumerate(layers) if isinstance(m, nn.ReLU)]
        # Every ReLU follows a LayerNorm (a ChannelNorm's own, after a convolution).
        assert sum(isinstance(m, ChannelNorm | nn.LayerNorm) for m in net.modules()) >= norms
        for i in relus:
            before = layers[i - 1]
            assert isinstance(before, nn.LayerNorm), (torso, i, type(before))
        assert net(torch.zeros(2, *shape)).shape == (2, 3)
    with pytest.raises(ValueError, match="convolutional torso"):
        QNetwork(obs_shape=(4,), num_actions=2, layer_norm=True)


def test_channel_norm_normalizes_the_channels_at_each_position() -> None:
    x = torch.randn(2, 16, 5, 5) * 3.0 + 7.0
    y = ChannelNorm(16)(x)
    assert torch.allclose(y.mean(dim=1), torch.zeros(2, 5, 5), atol=1e-5)
    assert torch.allclose(y.var(dim=1, unbiased=False), torch.ones(2, 5, 5), atol=1e-3)


def test_without_layer_norm_the_state_dict_keys_are_those_of_earlier_checkpoints() -> None:
    net = QNetwork(obs_shape=(4, 10, 10), num_actions=3, torso="minatar")
    assert [k for k in net.state_dict() if k.endswith("weight")] == [
        "torso.0.weight",
        "torso.3.weight",
        "value_head.weight",
        "advantage_head.weight",
    ]
