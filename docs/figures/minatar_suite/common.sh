# Sourced by the MinAtar figure scripts (minatar_suite/run.sh, minatar_adam_eps/run.sh): the
# reference DQN's 5M-frame returns (docs/minatar.md says where each comes from), the repository
# root as the working directory, and its .venv when there is one.
declare -A REFERENCE=([Asterix]=17 [Breakout]=10 [Freeway]=50 [Seaquest]=20 [SpaceInvaders]=44)
cd "$(cd "$(dirname "${BASH_SOURCE[0]}")/../../.." && pwd)" || exit 1
if [ -f .venv/bin/activate ]; then . .venv/bin/activate; fi
