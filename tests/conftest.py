"""Shared fixtures: Hydra composition of the real conf/, and a clean Ray environment."""

from __future__ import annotations

import os

import pytest

# Tests never join a cluster left behind by `ray start` or named by the caller (a plain
# ray.init() would pick either up).
os.environ.pop("RAY_ADDRESS", None)
os.environ.setdefault("RAY_AUTH_MODE", "disabled")
os.environ.setdefault("WANDB_MODE", "offline")
# Tiny networks gain nothing from threads, and on a busy 2-core machine threads spin-wait.
os.environ.setdefault("OMP_NUM_THREADS", "1")


@pytest.fixture
def compose_config():
    """Compose conf/config.yaml with overrides and convert it (running validation)."""
    from hydra import compose, initialize_config_dir

    from apex_dqn.cli.train import CONF_DIR, to_config

    def _compose(*overrides: str):
        with initialize_config_dir(config_dir=CONF_DIR, version_base="1.3"):
            return to_config(compose("config", overrides=list(overrides)))

    return _compose


# Multi-node tests start several raylets and kill nodes: they get longer than pytest-timeout's
# default (pyproject.toml), unless they set their own.
MULTINODE_TIMEOUT_S = 900


# What `pytest --fast` leaves out: everything that starts Ray or runs end to end.
NOT_FAST = ("slow", "ray", "multinode", "gpu")


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--fast",
        action="store_true",
        help=f"the fast tier: leave out tests marked {', '.join(NOT_FAST)} (docs/development.md)",
    )


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Give every multinode test MULTINODE_TIMEOUT_S unless it sets its own timeout; with
    ``--fast``, deselect the tests marked with any of NOT_FAST."""
    for item in items:
        if item.get_closest_marker("multinode") and not item.get_closest_marker("timeout"):
            item.add_marker(pytest.mark.timeout(MULTINODE_TIMEOUT_S))
    if config.getoption("--fast"):
        slow = [i for i in items if any(i.get_closest_marker(m) for m in NOT_FAST)]
        if slow:
            config.hook.pytest_deselected(items=slow)
            items[:] = [i for i in items if i not in slow]
