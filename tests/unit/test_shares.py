"""CPU shares sized to the machine (apex_dqn.runtime.shares)."""

from __future__ import annotations

import dataclasses
import os
import subprocess
import sys

import pytest

from apex_dqn.config import ActorsConfig, Config, ConfigError, LearnerConfig
from apex_dqn.runtime.shares import (
    CFS_WEIGHTS,
    SHARE_KEYS,
    actor_niceness,
    fit_cpu_shares,
    required_cpus,
    usable_cpus,
)


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


@pytest.mark.parametrize(
    ("num_actors", "nice"),
    [(1, 5), (3, 5), (4, 7), (8, 10), (16, 13), (32, 16), (64, 19), (360, 19)],
)
def test_auto_niceness_keeps_all_actors_together_no_heavier_than_the_learner(num_actors, nice):
    assert actor_niceness("auto", num_actors) == nice
    if num_actors <= 64:  # beyond, 19 is as far as it goes
        assert num_actors * CFS_WEIGHTS[nice] <= CFS_WEIGHTS[0]
        if nice > 5:  # and it is the least such niceness
            assert num_actors * CFS_WEIGHTS[nice - 1] > CFS_WEIGHTS[0]


def test_a_niceness_the_user_set_is_kept():
    assert actor_niceness(0, 64) == 0
    assert actor_niceness(12, 2) == 12


@pytest.mark.parametrize("bad", [-1, 20, "low", 2.5, True])
def test_a_bad_niceness_names_the_key_and_what_it_takes(bad):
    with pytest.raises(ConfigError, match=r"actors.nice must be auto or an integer in \[0, 19\]"):
        ActorsConfig(nice=bad)


@pytest.mark.parametrize("niceness", [0, 3])
def test_a_learner_that_runs_niced_says_so(niceness):
    """A cluster started without RAY_worker_niceness=0 runs the learner niced (at 15): it says
    so, since actors on its node can then barely yield to it."""
    runs_at = os.nice(0) + niceness  # this process may itself run niced
    says = runs_at > 0
    code = (
        f"import os; os.nice({niceness})\n"
        "from apex_dqn.runtime.hosts import _warn_if_niced\n"
        "_warn_if_niced()\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert (f"the learner runs at niceness {runs_at} " in out.stderr) is says, out.stderr
    assert ("RAY_worker_niceness=0" in out.stderr) is says


@pytest.mark.parametrize(
    ("cpu_max", "v1", "expected"),
    [
        ("max 100000\n", None, 4),  # cgroup v2, no quota: the affinity mask
        ("150000 100000\n", None, 2),  # docker run --cpus=1.5
        ("50000 100000\n", None, 1),  # half a CPU still runs one process
        ("800000 100000\n", None, 4),  # a quota above the mask: the mask
        (None, ("100000", "100000"), 1),  # cgroup v1, one CPU
        (None, ("-1", "100000"), 4),  # cgroup v1, no quota
        (None, None, 4),  # no cgroup file at all
    ],
)
def test_usable_cpus_is_the_affinity_mask_capped_by_a_cgroup_quota(
    tmp_path, monkeypatch, cpu_max, v1, expected
):
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: {0, 1, 2, 3})
    if cpu_max is not None:
        (tmp_path / "cpu.max").write_text(cpu_max)
    v1_dir = tmp_path / "cpu"
    if v1 is not None:
        v1_dir.mkdir()
        (v1_dir / "cpu.cfs_quota_us").write_text(v1[0])
        (v1_dir / "cpu.cfs_period_us").write_text(v1[1])
    assert usable_cpus(tmp_path / "cpu.max", v1_dir) == expected
