"""The replay shard role: one ``PrioritizedReplay`` (or its frame variant), its snapshots, and
several batches per sample call.

A call between processes costs far more than a replay operation on small transitions (hundreds
of microseconds against about a hundred), so the learner asks for several batches at once and
returns their priorities in one call.
"""

from __future__ import annotations

import os
import time
from typing import Any

import numpy as np

from apex_dqn.core.types import ReplayStats, Sample
from apex_dqn.roles.build import ShardSpec


class ShardWorker:
    """One replay shard (see module docstring).

    Args:
        spec: what the shard's replay is built from, and where its snapshot lives (None:
            snapshots off).
        snapshot_every_s: seconds between snapshots written as batches come (0: only on
            request).
        load_snapshot: reload the snapshot at start (a resumed run, or a restarted shard). A
            fresh shard never does, so a reused output directory cannot leak old transitions
            into a new run.
    """

    def __init__(
        self,
        spec: ShardSpec,
        *,
        snapshot_every_s: float = 0.0,
        load_snapshot: bool = False,
    ) -> None:
        self.replay = spec.build()
        snapshot_path = spec.snapshot_path
        self._snapshot_path = snapshot_path
        self._snapshot_every_s = snapshot_every_s
        self._last_snapshot = time.monotonic()
        self.restored = 0
        if snapshot_path and load_snapshot and os.path.isfile(snapshot_path):
            from apex_dqn.replay.snapshot import load_snapshot as read

            self.replay.load_state_dict(read(snapshot_path))
            self.restored = len(self.replay)

    def add(self, batch: Any) -> int:
        """Insert a pushed batch; return the shard's size. Snapshots when one is due."""
        self.replay.add(batch)
        if (
            self._snapshot_path
            and self._snapshot_every_s > 0
            and time.monotonic() - self._last_snapshot >= self._snapshot_every_s
        ):
            self.snapshot()
        return len(self.replay)

    def snapshot(self) -> int | None:
        """Write the shard's state to its snapshot file now; return the transitions written
        (None: snapshots off)."""
        if not self._snapshot_path:
            return None
        from apex_dqn.replay.snapshot import save_snapshot

        save_snapshot(self._snapshot_path, self.replay.state_dict())
        self._last_snapshot = time.monotonic()
        return len(self.replay)

    def sample_many(self, batch_size: int, beta: float, num_batches: int) -> list[Sample]:
        """``num_batches`` independent prioritized samples of ``batch_size``."""
        return [self.replay.sample(batch_size, beta) for _ in range(num_batches)]

    def update_priorities(self, ids_B: np.ndarray, priorities_B: np.ndarray) -> int:
        """Apply new priorities (stale ids are ignored); return how many were applied."""
        return self.replay.update_priorities(ids_B, priorities_B)

    def stats(self) -> ReplayStats:
        """The shard's statistics."""
        return self.replay.stats()

    def restored_size(self) -> int:
        """Transitions this shard reloaded from its snapshot when it started."""
        return self.restored

    def pid(self) -> int:
        """The shard's process id (the soak benchmark reads its memory)."""
        return os.getpid()
