"""The ParameterServer: the latest weights and their version number.

The learner publishes; actors and the evaluator ask ``pull_if_newer(version)`` and receive the
weights only when their own copy is out of date, so an unchanged version costs one tiny message.
The weights object is opaque here: under Ray it is a reference to one object in the object store
per version (put once by the learner), in a single process it is the numpy state dict itself.
"""

from __future__ import annotations

from typing import Any


class ParameterServer:
    """Holds the latest published weights and their version (-1 before the first publish)."""

    def __init__(self) -> None:
        self._weights: Any = None
        self._version = -1

    def publish(self, weights: Any, version: int, force: bool = False) -> None:
        """Publish ``weights`` as ``version``; an older version than the current one is ignored
        unless ``force`` (a learner restored from an older checkpoint)."""
        if force or version >= self._version:
            self._weights = weights
            self._version = int(version)

    def pull_if_newer(self, version: int) -> tuple[Any, int]:
        """(weights, latest version) if newer than ``version``, else (None, ``version``)."""
        # "Differs", not "is greater": after a forced (older) publish, holders of newer
        # weights must take the restored ones too.
        if self._version != version and self._weights is not None:
            return self._weights, self._version
        return None, version

    def version(self) -> int:
        """The latest published version."""
        return self._version
