"""apex-dqn: Ape-X DQN (distributed prioritized experience replay) on Ray, with a GPU learner."""

import time as _time

__version__ = "0.1.0"

# When this process started running apex-dqn: the origin of time_to_solve_s. The OS's process
# creation time would also count whatever a shell did before it exec'd into apex-dqn (the
# commands before it in ``bash -c '... && apex-dqn'``); the interpreter's own start-up before
# this import, a tenth of a second, is not counted.
STARTED_AT = _time.time()
