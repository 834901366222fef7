"""Signals that ask a run to stop (SIGINT, SIGTERM) rather than kill it."""

from __future__ import annotations

import signal
from types import FrameType, TracebackType
from typing import Any


class StopSignals:
    """While active, SIGINT and SIGTERM ask the run to stop instead of killing it.

    The driver loop sees ``received`` and stops as for any other reason: a final checkpoint is
    written, outputs are finished, Ray shuts down, and the CLI exits with 128 + the signal
    number. A second signal restores the default behaviour (a user pressing Ctrl-C twice).
    Outside the main thread (signals cannot be caught there) it does nothing.
    """

    SIGNALS = (signal.SIGINT, signal.SIGTERM)

    def __init__(self) -> None:
        self.received: int | None = None
        self._previous: dict[int, Any] = {}

    @property
    def name(self) -> str:
        return signal.Signals(self.received).name if self.received is not None else ""

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        if self.received is not None:
            self._restore()
            signal.raise_signal(signum)
            return
        self.received = signum
        print(f"apex-dqn: {signal.Signals(signum).name} received, stopping", flush=True)

    def reclaim(self) -> None:
        """Take back the signals whose handlers were replaced since ``__enter__``: ``ray.init``
        sets SIGTERM to ``sys.exit``, which would end the run without its final checkpoint."""
        for sig in self._previous:
            if signal.getsignal(sig) != self._handle:
                signal.signal(sig, self._handle)

    def _restore(self) -> None:
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)
        self._previous = {}

    def __enter__(self) -> StopSignals:
        try:
            for sig in self.SIGNALS:
                self._previous[sig] = signal.signal(sig, self._handle)
        except ValueError:  # not the main thread
            self._restore()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._restore()
