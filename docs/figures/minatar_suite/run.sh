#!/bin/bash
# Issue 25's MinAtar suite on the final code: per game, benchmarks/learning.py with the env=minatar
# defaults untouched but for the game, 10 minutes each from process start, apex-dqn on seeds
# 100, 101, 102 and Stable-Baselines3 (MinAtar's reference settings) on 100 and 101, alternating
# (apex 100, SB3 100, SB3 101, apex 101, apex 102), runs not stopped at a target; apex-dqn confirms
# the first evaluation at or above the reference DQN's 5M-frame return (docs/minatar.md) and
# goes on. Writes <game>.json, <game>.png and <game>.md here, one game at a time, on the idle
# machine. Usage: bash docs/figures/minatar_suite/run.sh Seaquest Breakout ...
set -u
here=$(cd "$(dirname "$0")" && pwd)
. "$here/common.sh"  # REFERENCE, the root as working directory, .venv
for game in "$@"; do
  ref=${REFERENCE[$game]:?"no reference return for $game (one of: ${!REFERENCE[*]})"}
  python benchmarks/learning.py "$game" --budget-s 600 --seeds 3 --first-seed 100 --sb3-seeds 2 \
    --reference-return "$ref" \
    --seed-note "seeds 100-102: no tuning run used them (tuning used seeds 0 and 10)" \
    --json "$here/$game.json" --png "$here/$game.png" > "$here/$game.md" 2> "$here/$game.log"
  echo "$game rc=$? $(date -u +%FT%TZ)" >> "$here/progress.txt"
done
