"""The ports through which roles reach the replay shards and the weight store.

A role never holds a Ray handle: it is given ports. The Ray runtime binds them to actor handles
and object refs; the local runtime calls the objects in this process directly, and every ticket
it hands out is finished at once. Calls that may take a while (a push, a sample request) return
a *ticket*; ``wait`` says which tickets are finished and ``result`` takes a finished ticket's
answer.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol

import numpy as np

from apex_dqn.core.types import ReplayStats, Sample


class ShardDown(RuntimeError):
    """A shard call failed: the shard died, or is being restarted, or did not answer in time."""


class ReplayPort(Protocol):
    """The replay shards as one role sees them (see module docstring)."""

    @property
    def num_shards(self) -> int:
        """How many shards there are."""
        ...

    def add(self, shard: int, batch: Any) -> Any:
        """Push ``batch`` to ``shard``; a ticket whose result is the shard's size."""
        ...

    def sample_many(self, shard: int, batch_size: int, beta: float, num_batches: int) -> Any:
        """Ask ``shard`` for ``num_batches`` prioritized batches; a ticket whose result is a
        ``list[Sample]``."""
        ...

    def update_priorities(self, shard: int, ids_B: np.ndarray, priorities_B: np.ndarray) -> None:
        """Send new priorities to ``shard`` without waiting for it."""
        ...

    def stats(self, shard: int) -> Any:
        """A ticket whose result is ``shard``'s ``ReplayStats``."""
        ...

    def wait(self, tickets: Sequence[Any], num_returns: int, timeout: float | None) -> list[Any]:
        """The first ``num_returns`` of ``tickets`` to finish, or those finished when
        ``timeout`` seconds have passed (None: no limit)."""
        ...

    def result(self, ticket: Any, timeout: float | None = None) -> Any:
        """The answer of ``ticket``; raises ``ShardDown`` if its shard failed."""
        ...


class WeightStore(Protocol):
    """The parameter server as one role sees it: the latest weights and their version."""

    def publish(self, weights: dict[str, np.ndarray], version: int, force: bool = False) -> None:
        """Make ``weights`` the latest, as ``version`` (``force``: even when older)."""
        ...

    def pull_if_newer(self, version: int) -> tuple[dict[str, np.ndarray] | None, int]:
        """(weights, their version) when the store's version differs from ``version``, else
        (None, ``version``)."""
        ...


def samples_of(port: ReplayPort, ticket: Any) -> list[Sample]:
    """A sample request's batches (typed ``result``)."""
    samples: list[Sample] = port.result(ticket)
    return samples


def stats_of(port: ReplayPort, ticket: Any, timeout: float | None = None) -> ReplayStats:
    """A stats request's answer (typed ``result``)."""
    stats: ReplayStats = port.result(ticket, timeout)
    return stats
