"""The ports through which roles reach the replay shards and the weight store, and the
components they host, as ``Protocol``s that mypy checks.

A role never holds a Ray handle: it is given ports. The Ray runtime binds them to actor handles
and object refs; the local runtime calls the objects in this process directly, and every ticket
it hands out is finished at once. Calls that may take a while (a push, a sample request) return
a *ticket*; ``wait`` says which tickets are finished and ``result`` takes a finished ticket's
answer.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np

from apex_dqn.config import LearnerConfig
from apex_dqn.core.reports import ActorReport
from apex_dqn.core.types import ReplayStats, Sample, TransitionBatch

if TYPE_CHECKING:  # torch stays out of the Ray driver
    from apex_dqn.algo.learner import StagedBatch, StepResult


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


class ActorComponent(Protocol):
    """What the actor role needs of the actor it hosts (``Actor``, ``PipelinedActor``)."""

    weights_version: int
    epsilon: float

    def set_weights(self, weights: dict[str, np.ndarray], version: int) -> None:
        """Act with ``weights`` from now on, as ``version``."""
        ...

    def run_steps(self, num_steps: int, report: ActorReport) -> tuple[list[Any], ActorReport]:
        """Step the envs ``num_steps`` times, adding to ``report``; the full push batches."""
        ...

    def close(self) -> None:
        """Close the envs."""
        ...


class LearnerComponent(Protocol):
    """What the learner role and its feeder need of the learner they host (``Learner``)."""

    cfg: LearnerConfig
    learner_steps: int
    skipped_updates: int

    @property
    def device(self) -> Any:
        """The torch device it updates on."""
        ...

    @property
    def stages_async(self) -> bool:
        """Whether ``stage`` copies to a device, so that staging in threads pays."""
        ...

    def beta(self) -> float:
        """The importance-sampling exponent now."""
        ...

    def stage(self, batch: TransitionBatch, weights_B: np.ndarray) -> StagedBatch:
        """``batch`` and its importance weights on the device."""
        ...

    def step(self, staged: StagedBatch) -> StepResult:
        """One update; the metrics and new priorities."""
        ...

    def get_weights(self) -> dict[str, np.ndarray]:
        """The online network's weights (what actors load)."""
        ...

    def state_dict(self) -> dict:
        """Everything needed to continue learning."""
        ...

    def load_state_dict(self, state: dict) -> None:
        """Restore ``state_dict``."""
        ...


def samples_of(port: ReplayPort, ticket: Any) -> list[Sample]:
    """A sample request's batches (typed ``result``)."""
    samples: list[Sample] = port.result(ticket)
    return samples


def stats_of(port: ReplayPort, ticket: Any, timeout: float | None = None) -> ReplayStats:
    """A stats request's answer (typed ``result``)."""
    stats: ReplayStats = port.result(ticket, timeout)
    return stats
