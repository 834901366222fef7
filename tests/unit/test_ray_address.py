"""The head's address is checked before Ray starts: a malformed one is a config error, and one
where nothing answers fails in seconds with one line (ray.init would wait for minutes)."""

from __future__ import annotations

import socket
import time

import pytest

from apex_dqn.config import ConfigError, RayConfig
from apex_dqn.config.run import ray_host_port
from apex_dqn.runtime.ray_cluster import check_reachable


@pytest.mark.parametrize(
    ("address", "expected"),
    [
        ("auto", None),
        ("local", None),
        ("198.18.0.1:6379", ("198.18.0.1", 6379)),
        ("ray://head.example:10001", ("head.example", 10001)),
        ("[::1]:6379", ("::1", 6379)),
        ("anyscale://my-cluster", None),  # another client's scheme: Ray's to resolve
        ("RAY://head.example:10001", ("head.example", 10001)),  # schemes are case-blind
    ],
)
def test_ray_host_port_reads_the_forms_ray_accepts(address, expected):
    assert ray_host_port("ray.address", address) == expected


@pytest.mark.parametrize(
    "address", ["head", "head:", ":6379", "head:0", "head:port", "ray://head/x:10001"]
)
def test_a_malformed_address_names_the_key_and_the_forms(address):
    with pytest.raises(ConfigError, match=r"ray\.address must be 'auto', 'local', host:port"):
        RayConfig(address=address)


def test_a_dashboard_address_is_named_as_one_and_an_empty_one_means_local():
    with pytest.raises(ConfigError, match=r"ray\.address=http://head:8265 is a dashboard"):
        RayConfig(address="http://head:8265")
    with pytest.raises(ConfigError, match=r"is a dashboard"):
        RayConfig(address="HTTPS://head:8265")
    assert RayConfig(address="").address == ""  # a local instance, as None


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_a_head_that_does_not_answer_fails_in_seconds(monkeypatch):
    monkeypatch.delenv("RAY_ADDRESS", raising=False)
    port = _closed_port()
    start = time.monotonic()
    with pytest.raises(ConfigError) as err:
        check_reachable(RayConfig(address=f"127.0.0.1:{port}"), timeout_s=2.0)
    assert time.monotonic() - start < 3.0
    message = str(err.value)
    assert message.startswith(f"ray.address=127.0.0.1:{port}: no Ray head answers")
    assert f"ray start --head --port={port}" in message and "\n" not in message


def test_ray_address_from_the_environment_is_checked_and_named(monkeypatch):
    port = _closed_port()
    monkeypatch.setenv("RAY_ADDRESS", f"127.0.0.1:{port}")
    with pytest.raises(ConfigError, match=rf"^RAY_ADDRESS=127\.0\.0\.1:{port}: no Ray head"):
        check_reachable(RayConfig(), timeout_s=2.0)
    # 'auto' reads RAY_ADDRESS too (as ray.init does): checked and named the same way.
    with pytest.raises(ConfigError, match=rf"^RAY_ADDRESS=127\.0\.0\.1:{port}: no Ray head"):
        check_reachable(RayConfig(address="auto"), timeout_s=2.0)
    monkeypatch.setenv("RAY_ADDRESS", "nohost")
    with pytest.raises(ConfigError, match=r"^RAY_ADDRESS must be"):
        check_reachable(RayConfig(), timeout_s=2.0)


def test_a_head_that_answers_passes_and_auto_is_left_to_ray(monkeypatch):
    monkeypatch.delenv("RAY_ADDRESS", raising=False)
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen(1)
        check_reachable(RayConfig(address=f"127.0.0.1:{server.getsockname()[1]}"))
    check_reachable(RayConfig(address="auto"))
    check_reachable(RayConfig())  # a local instance: nothing to reach
