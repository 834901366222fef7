"""CPU shares sized to the machine: the ``num_cpus`` a user has not set shrink, all by one
factor, until the run's reservations fit the local Ray instance; and the actors' niceness, which
decides how the kernel divides a CPU that actors and the learner share.

The defaults reserve a quarter CPU per actor and one per learner, so ``learner.num_learners=2``
or a dozen actors ask a 2-core machine for more CPUs than it has, and Ray would never schedule
them. Shares are reservations for Ray's scheduler, not limits (processes are not pinned), so
shrinking them changes where Ray may put processes, not how fast they run. A share the user set
on the command line is kept as it is; if those alone do not fit, the run fails as before.
"""

from __future__ import annotations

import contextlib
import dataclasses
import math
import os
from collections.abc import Iterable
from pathlib import Path

from apex_dqn.config import Config

# The CPU quota of this process's cgroup: v2's "<quota> <period>" (or "max <period>"), and
# v1's two files (a quota of -1: none).
CGROUP_CPU_MAX = Path("/sys/fs/cgroup/cpu.max")
CGROUP_V1_CPU = Path("/sys/fs/cgroup/cpu")


def _cgroup_quota(cpu_max: Path, v1: Path) -> float | None:
    """CPUs of this cgroup's quota (None: no quota, or none readable)."""
    with contextlib.suppress(OSError, ValueError):
        quota, period = cpu_max.read_text().split()[:2]
        return None if quota == "max" else int(quota) / int(period)
    with contextlib.suppress(OSError, ValueError):
        quota_us = int((v1 / "cpu.cfs_quota_us").read_text())
        period_us = int((v1 / "cpu.cfs_period_us").read_text())
        return None if quota_us <= 0 else quota_us / period_us
    return None


def usable_cpus(cpu_max: Path = CGROUP_CPU_MAX, cgroup_v1: Path = CGROUP_V1_CPU) -> int:
    """The CPUs this process may use: its affinity mask (a cpuset, ``taskset``), capped by its
    cgroup's CPU quota, rounded up (``docker run --cpus=1.5`` gives 2: two processes at 75%;
    Ray's own count would round down), at least 1. ``os.cpu_count()`` counts the host's, so a
    local Ray instance sized by it oversubscribes a container."""
    try:
        count = len(os.sched_getaffinity(0))
    except AttributeError:  # no affinity masks on this platform
        count = os.cpu_count() or 1
    quota = _cgroup_quota(cpu_max, cgroup_v1)
    if quota is not None:
        count = min(count, math.ceil(quota))
    return max(1, count)


# The config keys of a run's CPU reservations (``section.field``).
SHARE_KEYS = (
    "actors.num_cpus",
    "replay.num_cpus",
    "learner.num_cpus",
    "eval.num_cpus",
    "ray.parameter_server_num_cpus",
)


def _count(cfg: Config, key: str) -> int:
    return {
        "actors.num_cpus": cfg.actors.num_actors,
        "replay.num_cpus": cfg.replay.num_shards,
        "learner.num_cpus": cfg.learner.num_learners,
    }.get(key, 1)


def _get(cfg: Config, key: str) -> float:
    section, name = key.split(".")
    return float(getattr(getattr(cfg, section), name))


def required_cpus(cfg: Config) -> float:
    """CPUs that all components together reserve."""
    return sum(_count(cfg, key) * _get(cfg, key) for key in SHARE_KEYS)


def fit_cpu_shares(cfg: Config, cpus: float, explicit: Iterable[str]) -> tuple[Config, str | None]:
    """``cfg`` with the shares not in ``explicit`` scaled down so that the run reserves at most
    ``cpus``; and a line saying what changed (None when it fitted already or cannot be made to
    fit, which ``check_resources`` then reports)."""
    need = required_cpus(cfg)
    if need <= cpus + 1e-9:
        return cfg, None
    fixed = set(explicit)
    sized = [k for k in SHARE_KEYS if k not in fixed and _get(cfg, k) > 0]
    kept = sum(_count(cfg, k) * _get(cfg, k) for k in SHARE_KEYS if k not in sized)
    scalable = sum(_count(cfg, k) * _get(cfg, k) for k in sized)
    if not sized or kept >= cpus:
        return cfg, None
    factor = (cpus - kept) / scalable
    sections: dict[str, dict[str, float]] = {}
    changes = []
    for key in sized:
        section, name = key.split(".")
        # Rounded down to 1/1000 of a CPU, so that the sum stays within ``cpus``.
        value = math.floor(_get(cfg, key) * factor * 1000) / 1000
        sections.setdefault(section, {})[name] = value
        changes.append(f"{key}={value:g}")
    replaced = {
        section: dataclasses.replace(getattr(cfg, section), **values)
        for section, values in sections.items()
    }
    note = (
        f"CPU shares sized to the {cpus:g} CPUs of this Ray instance (the defaults reserve "
        f"{need:g}): {', '.join(changes)}; set any of them to choose it yourself"
    )
    return dataclasses.replace(cfg, **replaced), note


# CFS weight of niceness 0..19 (Linux, kernel/sched/core.c: sched_prio_to_weight): a CPU is
# divided among runnable processes in proportion to their weights.
CFS_WEIGHTS = (
    1024, 820, 655, 526, 423, 335, 272, 215, 172, 137, 110, 87, 70, 56, 45, 36, 29, 23, 18, 15
)  # fmt: skip
AUTO_NICE_BASE = 5


def actor_niceness(nice: int | str, num_actors: int) -> int:
    """The niceness each actor adds to its own (``actors.nice``).

    ``auto``: at least ``AUTO_NICE_BASE``, and the least niceness at which ``num_actors`` actors
    together weigh no more than one process at the learner's niceness, so that the learner's
    share of a CPU it shares with actors does not fall as actors are added (at most 19, reached
    from 64 actors). The count is of all actors, an upper bound on those that share the
    learner's machine; among themselves actors are equal whatever their niceness.
    """
    if nice != "auto":
        return int(nice)
    for level in range(AUTO_NICE_BASE, len(CFS_WEIGHTS)):
        if num_actors * CFS_WEIGHTS[level] <= CFS_WEIGHTS[0]:
            return level
    return len(CFS_WEIGHTS) - 1
