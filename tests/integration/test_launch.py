"""The cluster-launcher YAMLs in launch/: Ray's own offline validation, and the Ray pin."""

from __future__ import annotations

import copy
import re
from pathlib import Path

import pytest
import ray
import yaml

LAUNCH = Path(__file__).resolve().parents[2] / "launch"
YAMLS = sorted(LAUNCH.glob("*.yaml"))


def _validate(config: dict) -> None:
    # Ray's private API (kept tolerant): prepare fills defaults, validate checks the schema.
    from ray.autoscaler._private.util import prepare_config, validate_config

    validate_config(prepare_config(copy.deepcopy(config)))


def test_there_is_a_cloud_and_an_on_premise_cluster():
    providers = {yaml.safe_load(p.read_text())["provider"]["type"] for p in YAMLS}
    assert {"aws", "local"} <= providers


@pytest.mark.parametrize("path", YAMLS, ids=[p.name for p in YAMLS])
def test_launch_yaml_passes_rays_validation(path):
    _validate(yaml.safe_load(path.read_text()))


@pytest.mark.parametrize("path", YAMLS, ids=[p.name for p in YAMLS])
def test_a_broken_variant_fails_validation(path):
    from jsonschema.exceptions import ValidationError

    config = yaml.safe_load(path.read_text())
    config["head_start_commands"] = config.pop("head_start_ray_commands")  # a misspelt key
    with pytest.raises(ValidationError, match="'head_start_commands' was unexpected"):
        _validate(config)


@pytest.mark.parametrize("path", YAMLS, ids=[p.name for p in YAMLS])
def test_nodes_get_the_clients_ray_and_the_project(path):
    text = path.read_text()
    pins = set(re.findall(r"ray\[default\]==([0-9.]+)", text))
    client = ray.__version__
    assert pins == {client}, f"{path.name} pins ray {pins}, the client has {client}"
    config = yaml.safe_load(text)
    assert config["file_mounts"]["~/apex-dqn"] == "."
    assert any("pip install" in c and "~/apex-dqn" in c for c in config["setup_commands"])
    starts = config["head_start_ray_commands"] + config["worker_start_ray_commands"]
    assert all("RAY_AUTH_MODE=token" in c for c in starts if "ray start" in c)
    # Workers at niceness 0, so that actors can yield the CPU to a learner on their node.
    assert all("RAY_worker_niceness=0" in c for c in starts if "ray start" in c)
