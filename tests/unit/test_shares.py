"""CPU shares sized to the machine (apex_dqn.runtime.shares)."""

from __future__ import annotations

import dataclasses

import pytest

from apex_dqn.config import ActorsConfig, Config, LearnerConfig
from apex_dqn.runtime.shares import SHARE_KEYS, fit_cpu_shares, required_cpus


def test_a_run_that_fits_is_left_as_it_is():
    cfg = Config()
    assert required_cpus(cfg) <= 2
    assert fit_cpu_shares(cfg, 2, ()) == (cfg, None)


def test_the_shares_not_set_shrink_by_one_factor_until_the_run_fits():
    cfg = Config(learner=LearnerConfig(num_learners=2), runtime="ray")
    need = required_cpus(cfg)
    assert need > 2
    sized, note = fit_cpu_shares(cfg, 2, ())
    assert required_cpus(sized) <= 2 and required_cpus(sized) > 2 - 0.01
    assert sized.learner.num_cpus == pytest.approx(cfg.learner.num_cpus * 2 / need, abs=1e-3)
    assert sized.actors.num_cpus / cfg.actors.num_cpus == pytest.approx(
        sized.learner.num_cpus / cfg.learner.num_cpus, abs=0.01
    )
    assert note is not None and "2 CPUs" in note
    assert f"learner.num_cpus={sized.learner.num_cpus:g}" in note
    # Only the shares change.
    assert sized.actors == dataclasses.replace(cfg.actors, num_cpus=sized.actors.num_cpus)
    assert sized.learner == dataclasses.replace(cfg.learner, num_cpus=sized.learner.num_cpus)


def test_a_share_the_user_set_is_kept_and_the_others_make_room():
    cfg = Config(actors=ActorsConfig(num_actors=12))
    sized, note = fit_cpu_shares(cfg, 2, {"learner.num_cpus"})
    assert sized.learner.num_cpus == cfg.learner.num_cpus
    assert required_cpus(sized) <= 2 and "learner.num_cpus" not in (note or "")


def test_when_the_set_shares_alone_do_not_fit_nothing_is_sized():
    cfg = Config(learner=LearnerConfig(num_learners=2, num_cpus=1.0))
    assert fit_cpu_shares(cfg, 2, {"learner.num_cpus"}) == (cfg, None)
    assert fit_cpu_shares(cfg, 2, set(SHARE_KEYS)) == (cfg, None)
