"""apex-dqn: Ape-X DQN (distributed prioritized experience replay) on Ray, with a GPU learner.

The Python API (``apex_dqn.api``): ``apex_dqn.train(...)`` trains as the ``apex-dqn`` command
does and ``apex_dqn.load_policy(path)`` acts with a checkpoint. They load on first use, so that
``import apex_dqn`` (done by every actor and shard process) stays free of torch, Ray and Hydra.
"""

import time as _time
from typing import TYPE_CHECKING
from typing import Any as _Any

if TYPE_CHECKING:  # for type checkers; at run time they load on first use (__getattr__)
    from apex_dqn.api import Policy, TrainingFailed, TrainResult, load_policy, train

__version__ = "0.1.0"

# When this process started running apex-dqn: the origin of time_to_solve_s. The OS's process
# creation time would also count whatever a shell did before it exec'd into apex-dqn (the
# commands before it in ``bash -c '... && apex-dqn'``); the interpreter's own start-up before
# this import, a tenth of a second, is not counted.
STARTED_AT = _time.time()

# The API's names, loaded from apex_dqn.api (the top layer) on first access.
_API = ("Policy", "TrainResult", "TrainingFailed", "load_policy", "train")
__all__ = [
    "STARTED_AT",
    "Policy",
    "TrainResult",
    "TrainingFailed",
    "__version__",
    "load_policy",
    "train",
]


def __getattr__(name: str) -> _Any:
    """``apex_dqn.train`` and the rest of ``_API``, imported on first use (PEP 562)."""
    if name in _API:
        from apex_dqn import api  # the top layer, on first use only

        value = getattr(api, name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'apex_dqn' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted({*globals(), *_API})
