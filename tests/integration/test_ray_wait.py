"""The Ray runtime hands the driver every finished call at once, not one per wait."""

from __future__ import annotations

import time

import pytest
import ray

from apex_dqn.runtime.ray_runtime import finished

pytestmark = pytest.mark.ray


def test_finished_returns_every_ready_ref_and_waits_only_for_the_first():
    ray.init(num_cpus=1, include_dashboard=False, logging_level="WARNING")
    try:

        @ray.remote(num_cpus=0.01)
        def value(x: int, delay: float = 0.0) -> int:
            time.sleep(delay)
            return x

        done = [value.remote(i) for i in range(5)]
        ray.get(done)
        slow = value.remote(99, delay=30.0)
        t0 = time.monotonic()
        got = finished([slow, *done], timeout=10.0)
        assert sorted(ray.get(got)) == [0, 1, 2, 3, 4]  # all five, and not the slow one
        assert time.monotonic() - t0 < 5.0  # the first was ready: no waiting for the rest
        assert finished([slow], timeout=0.2) == []  # nothing finished within the timeout
        assert finished([], timeout=0.0) == []
    finally:
        ray.shutdown()
