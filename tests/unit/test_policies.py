"""The rules written once (``apex_dqn.core.rules``) and the driver's stop rules, without Ray."""

from __future__ import annotations

import pytest

from apex_dqn.core.rules import (
    ActorThrottle,
    ErrorStreak,
    IdentityWatch,
    PhaseTimer,
    ReplayRatioGate,
)
from apex_dqn.run.driver import stop_reason


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_replay_ratio_gate_allows_exactly_up_to_the_ratio():
    gate = ReplayRatioGate(max_ratio=2.0, samples_per_update=64)
    # 1,000 inserts allow 2,000 samples: 31 updates of 64 (1,984), not 32 (2,048).
    assert gate.allows(31, 1000) and not gate.allows(32, 1000)
    assert gate.allows(32, 1024)
    assert ReplayRatioGate(max_ratio=0.0, samples_per_update=64).allows(10**9, 0)


def test_replay_ratio_gate_counts_from_a_restore_with_grace():
    gate = ReplayRatioGate(max_ratio=1.0, samples_per_update=10)
    # Restored at update 500 into a replay that has seen 5,000 inserts: the old draws do not
    # count, and 100 transitions of grace let it start before new inserts come.
    gate.rebase(steps=500, added=5000, grace=100)
    assert gate.allows(510, 5000) and not gate.allows(511, 5000)
    assert gate.allows(520, 5100) and not gate.allows(521, 5100)


def _throttle(clock: Clock, **kwargs) -> ActorThrottle:
    args = {
        "min_replay_ratio": 4.0,
        "samples_per_update": 32,
        "min_size_to_learn": 128,
        "num_actors": 2,
        "stall_s": 30.0,
        "clock": clock,
    }
    return ActorThrottle(**{**args, **kwargs})


def test_actor_throttle_allows_its_share_of_the_fill_and_of_the_draws():
    throttle = _throttle(Clock())
    # Before any update an actor may deliver its half of the 128 the learner starts at.
    assert not throttle.ahead(0, 63) and throttle.ahead(0, 64)
    # 40 updates of 32 samples at 4 samples per transition: 320 more, 160 for this actor.
    assert not throttle.ahead(40, 223) and throttle.ahead(40, 224)
    assert not _throttle(Clock(), min_replay_ratio=0.0).ahead(0, 10**9)


def test_actor_throttle_recalibrates_for_an_older_version_and_after_a_restart():
    throttle = _throttle(Clock())
    assert throttle.ahead(40, 224)
    # A learner restored 30 updates back publishes version 10: the actor counts as caught up
    # there (not 120 transitions ahead), and goes on as updates come.
    assert throttle.ahead(10, 224)
    assert not throttle.ahead(20, 224) and not throttle.ahead(20, 263)
    assert throttle.ahead(20, 264)
    restarted = _throttle(Clock(), restarted=True)
    assert not restarted.ahead(-1, 0)  # no weights yet: the first pull calibrates
    # Its own count starts at 0 at version 100: caught up, with nothing owed.
    assert restarted.ahead(100, 0)
    # Two more updates allow 16 more transitions, 8 for this actor.
    assert not restarted.ahead(102, 7) and restarted.ahead(102, 8)


def test_actor_throttle_stalls_only_after_stall_s_without_a_new_version():
    clock = Clock()
    throttle = _throttle(clock)
    throttle.ahead(5, 10**6)
    clock.now += 29.0
    throttle.ahead(5, 10**6)
    assert not throttle.stalled()
    clock.now += 1.5
    assert throttle.stalled()
    assert not throttle.stalled()  # the stall clock starts again
    clock.now += 31.0
    throttle.ahead(6, 10**6)  # a new version: no stall
    assert not throttle.stalled()


def test_error_streak_identity_watch_and_phase_timer():
    streak = ErrorStreak(3)
    assert not streak.failed() and not streak.failed()
    streak.succeeded()
    assert not streak.failed() and not streak.failed() and streak.failed()
    watch = IdentityWatch()
    assert not watch.restarted("actor0", 11) and not watch.restarted("actor0", 11)
    assert watch.restarted("actor0", 12) and not watch.restarted("actor1", 12)
    clock = Clock()
    timer = PhaseTimer(("a", "b"), clock=clock)
    with timer.phase("a"):
        clock.now += 2.5
    with pytest.raises(RuntimeError), timer.phase("b"):
        clock.now += 1.0
        raise RuntimeError
    assert timer.seconds == {"a": 2.5, "b": 1.0}
    timer.reset()
    assert timer.seconds == {"a": 0.0, "b": 0.0}


def _stop(**kwargs) -> str | None:
    args = {
        "failure": None,
        "signal": None,
        "target_reached": False,
        "env_steps": 0,
        "max_env_steps": 1000,
        "seconds_left": 10.0,
    }
    return stop_reason(**{**args, **kwargs})


def test_stop_rules_and_their_order():
    assert _stop() is None
    assert _stop(seconds_left=0.0) == "train.max_seconds reached"
    assert _stop(env_steps=1000) == "train.max_env_steps reached"
    assert _stop(target_reached=True, env_steps=1000) == "target return reached"
    assert _stop(signal="SIGINT", target_reached=True) == "interrupted by SIGINT"
    assert _stop(failure="actor 1: EnvFailure: x", signal="SIGTERM") == (
        "failed: actor 1: EnvFailure: x"
    )
