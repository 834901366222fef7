"""The multi-host tests read the cluster's state from hosts_probe.py's stdout, where Ray prints
its own warnings too: a CI run failed when a loaded host's "lagging heartbeats" warning came
after the probe's JSON line and was read instead of it."""

from __future__ import annotations

import json

import pytest

from tests.integration import hosts_probe

STATE = {"nodes": ["198.18.7.1", "198.18.7.2"], "cpus": {"198.18.7.1": 2.0}, "roles": {}}


def test_the_result_line_is_found_among_rays_warnings_before_and_after_it():
    stdout = "\n".join(
        [
            "2026-12-07 21:40:01 WARNING worker.py: a warning before the result",
            hosts_probe.MARKER + json.dumps(STATE),
            "Warning: the following nodes are slow:",
            "\t(2) raylet has lagging heartbeats due to slow network or busy workload.",
        ]
    )
    assert hosts_probe.parse(stdout) == STATE


@pytest.mark.parametrize("stdout", ["", '{"nodes": []}', "\t(2) raylet has lagging heartbeats"])
def test_an_output_without_the_result_line_says_so_with_the_output(stdout):
    with pytest.raises(ValueError, match="hosts_probe: "):
        hosts_probe.parse(stdout)
