"""ray.init replaces the process's SIGTERM handler with sys.exit; init_ray puts the caller's
back, so a run's SIGTERM is a stop request (final checkpoint, outputs) from the first moment."""

from __future__ import annotations

import signal

import pytest
import ray

from apex_dqn.config import RayConfig
from apex_dqn.runtime.ray_cluster import init_ray


@pytest.mark.ray
def test_init_ray_leaves_the_callers_sigterm_handler_in_place():
    def handler(signum, frame):  # what the run's StopSignals install
        pass

    before = signal.signal(signal.SIGTERM, handler)
    try:
        # What the run would meet without init_ray's care (if Ray stops doing this, the
        # restore and this test can go).
        ray.init(address="local", num_cpus=1, include_dashboard=False)
        assert signal.getsignal(signal.SIGTERM) is not handler, "ray.init kept the handler"
        ray.shutdown()
        signal.signal(signal.SIGTERM, handler)
        assert init_ray(RayConfig(num_cpus=1)) is True  # this call started Ray
        assert signal.getsignal(signal.SIGTERM) is handler
    finally:
        ray.shutdown()
        signal.signal(signal.SIGTERM, before)
