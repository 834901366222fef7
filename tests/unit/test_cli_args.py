"""The command line's checks against the schema (apex_dqn.cli.args), without starting a run."""

from __future__ import annotations

import pytest

from apex_dqn.cli.args import check_overrides, config_groups, schema
from apex_dqn.cli.train import CONF_DIR
from apex_dqn.config import ConfigError

GROUPS = config_groups(CONF_DIR)


def _error(*overrides: str) -> str:
    with pytest.raises(ConfigError) as info:
        check_overrides(list(overrides), GROUPS)
    return str(info.value)


def test_the_groups_are_the_conf_folders():
    assert GROUPS["env"] == ["atari", "cartpole", "minatar"]
    assert "pong" in GROUPS["experiment"] and "wandb" in GROUPS["logging"]


def test_the_schema_holds_every_key_with_its_type():
    keys = schema()
    assert keys["actors.num_actors"] is int and keys["learner.lr"] is float
    assert keys["env.atari.frame_skip"] is int  # inside an optional section
    assert "learner.resources.*" in keys  # a dict field: its keys are the user's


@pytest.mark.parametrize("prefix", ["", "+", "++"])
def test_a_misspelt_key_fails_with_or_without_plus_and_names_the_nearest(prefix):
    message = _error(f"{prefix}actors.num_actor=3")
    assert message.startswith("unknown key actors.num_actor;")
    assert "did you mean actors.num_actors?" in message


def test_a_misspelt_section_finds_the_key_by_its_last_part():
    assert "did you mean learner.batch_size?" in _error("lerner.batch_size=32")


def test_a_key_with_no_neighbour_says_only_that_it_is_unknown():
    message = _error("zzzz=1")
    assert message.startswith("unknown key zzzz") and "did you mean" not in message


@pytest.mark.parametrize(
    ("override", "expected"),
    [
        ("learner.lr=fast", "learner.lr must be a number, got 'fast'"),
        ("actors.num_actors=2.5", "actors.num_actors must be an integer, got 2.5"),
        ("actors.pipeline=maybe", "actors.pipeline must be true or false, got 'maybe'"),
        ("network.hidden_sizes=64", "network.hidden_sizes must be a list such as [64,64]"),
        ("network.hidden_sizes=[64,x]", "must be a list whose items are each an integer"),
        ("train.target_return=hi", "train.target_return must be a number or null, got 'hi'"),
        ("train.max_seconds=soon", "train.max_seconds must be a number, got 'soon'"),
        ("seed=1,x", "seed must be an integer, got 'x'"),  # each value of a sweep
        ("env=pong", "env must be one of atari, cartpole, minatar; got 'pong'"),
        ("logging=[wandb,nope]", "logging must be one of"),
    ],
)
def test_a_value_of_the_wrong_type_or_option_names_the_key_and_what_it_takes(override, expected):
    assert expected in _error(override)


@pytest.mark.parametrize(
    "overrides",
    [
        ["learner.lr=3e-4", "actors.num_actors=4", "seed=0,1,2", "train.target_return=null"],
        ["env=atari", "experiment=pong", "logging=[wandb,tensorboard]"],
        ["learner.resources.gpu_node=1", "network.hidden_sizes=[32,32]", "+actors.nice=3"],
        ["~train.max_env_steps", "hydra.run.dir=/tmp/x", "hydra/launcher=basic"],
        ["learner.lr=${learner.adam_eps}", "actors.amp=auto", "env.id=ALE/Pong-v5"],
        ["seed=range(0,4)", "learner.lr=1", "output_dir=/tmp/x"],
    ],
)
def test_valid_command_lines_pass(overrides):
    check_overrides(overrides, GROUPS)
