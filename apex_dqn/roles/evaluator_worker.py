"""The evaluator role: evaluates the latest published weights, at most once per interval.

An environment error abandons that evaluation (``EvalFailed``) and rebuilds the evaluator's
environments; ``max_env_errors`` failed evaluations in a row raise ``EnvFailure``, which stops
the run.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable

from apex_dqn.core.reports import EvalFailed, Evaluated, NothingNew
from apex_dqn.core.rules import ErrorStreak
from apex_dqn.roles.build import EvaluatorSpec
from apex_dqn.roles.ports import WeightStore


class EvaluatorWorker:
    """Runs an ``Evaluator`` on new weights (see module docstring).

    Args:
        spec: what the ``Evaluator`` is built from.
        weights: the weight store.
        interval_s: seconds between the starts of two evaluations.
        max_env_errors: failed evaluations in a row that stop the run.
        block: wait until an evaluation is due (a process of its own); without, a call that
            comes too early answers ``NothingNew`` at once (one process, where waiting would
            stop everything else).
    """

    def __init__(
        self,
        spec: EvaluatorSpec,
        *,
        weights: WeightStore,
        interval_s: float,
        max_env_errors: int = 10,
        block: bool = True,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self._spec = spec
        self.evaluator = spec.build()
        self._weights = weights
        self._interval_s = interval_s
        self._errors = ErrorStreak(max_env_errors)
        self._block = block
        self._sleep = sleep
        self._version = -1
        self._last_start = -float("inf")

    def evaluate_latest(self, confirm: bool = True) -> Evaluated | EvalFailed | NothingNew:
        """Evaluate weights newer than the last evaluated ones. ``confirm``: repeat an
        evaluation that reaches the target (``Evaluator``)."""
        from apex_dqn.algo.actor import EnvFailure

        wait = self._last_start + self._interval_s - time.monotonic()
        if wait > 0:
            if not self._block:
                return NothingNew()
            self._sleep(wait)
        weights, version = self._weights.pull_if_newer(self._version)
        if weights is None:
            if self._block:
                self._sleep(0.02)
            return NothingNew()
        self._last_start = time.monotonic()
        self._version = version
        try:
            result = self.evaluator.evaluate(weights, version, confirm=confirm)
        except Exception as exc:  # user environment code
            if self._errors.failed():
                raise EnvFailure(
                    f"env.id={self._spec.env.id!r} raised in {self._errors.count} "
                    f"evaluations in a row (actors.max_env_errors={self._errors.limit}); "
                    f"last error: {type(exc).__name__}: {exc}"
                ) from exc
            with contextlib.suppress(Exception):
                self.evaluator.close()
            # The new evaluator goes on with the next episodes' seeds, not the first ones again.
            done = self.evaluator.evaluations
            self.evaluator = self._spec.build(evaluations_done=done)
            return EvalFailed()
        self._errors.succeeded()
        return Evaluated(result)
