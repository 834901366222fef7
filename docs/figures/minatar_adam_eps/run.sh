#!/bin/bash
# Issue 25, the Seaquest stall: does Adam's epsilon explain it? docs/figures/minatar_adam_scale/
# found 55% of Seaquest's weights with sqrt(v) below env=minatar's learner.adam_eps (1.5e-4).
# Runs benchmarks/learning.py with learner.adam_eps=1e-8 (apex-dqn only, 10 minutes from process
# start) on the given seeds of a game; the defaults' runs on the same seeds are in
# docs/figures/minatar_suite/<game>.json. One run at a time, on the idle machine.
# Usage: bash docs/figures/minatar_adam_eps/run.sh Seaquest 101 2   (game, first seed, seeds)
set -u
here=$(cd "$(dirname "$0")" && pwd)
. "$here/../minatar_suite/common.sh"  # REFERENCE, the root as working directory, .venv
game=$1 first=$2 seeds=$3
python benchmarks/learning.py "$game" --budget-s 600 --seeds "$seeds" --first-seed "$first" \
  --systems apex --override learner.adam_eps=1e-8 --reference-return "${REFERENCE[$game]}" \
  --seed-note "learner.adam_eps=1e-8 against the defaults' 1.5e-4; seeds $first.. as in minatar_suite" \
  --json "$here/${game}_s$first.json" > "$here/${game}_s$first.md" 2> "$here/${game}_s$first.log"
echo "$game $first rc=$? $(date -u +%FT%TZ)" >> "$here/progress.txt"
