#!/bin/bash
# Issue 25, the Seaquest stall: a plateau of the defaults, or too few frames in 10 minutes?
# MinAtar's reference DQN (README, img/learning_curves.gif) is still near 1 at 1.4M frames and
# climbs to 20 only between 2M and 5M. This runs the defaults (env=minatar, the game only) for
# 30 minutes on a seed that stalled in the 10-minute suite (101: best 5.7; 102: 9.0), apex-dqn
# only, not stopped at the reference, so its curve shows whether it climbs on with more frames.
# Usage: bash docs/figures/seaquest_long/run.sh [seed] [budget_s]
set -u
here=$(cd "$(dirname "$0")" && pwd)
. "$here/../minatar_suite/common.sh"  # REFERENCE, the root as working directory, .venv
seed=${1:-101} budget=${2:-1800}
declare -A SUITE_BEST=([100]=46.4 [101]=5.7 [102]=9.0)  # each seed's best in the 10-minute suite
python benchmarks/learning.py Seaquest --budget-s "$budget" --seeds 1 --first-seed "$seed" \
  --systems apex --reference-return "${REFERENCE[Seaquest]}" \
  --seed-note "seed $seed: best ${SUITE_BEST[$seed]:-(not in the suite)} in the 10-minute suite (minatar_suite/Seaquest.json)" \
  --json "$here/Seaquest_s$seed.json" --png "$here/Seaquest_s$seed.png" \
  > "$here/Seaquest_s$seed.md" 2> "$here/Seaquest_s$seed.log"
echo "Seaquest $seed rc=$? $(date -u +%FT%TZ)" >> "$here/progress.txt"
