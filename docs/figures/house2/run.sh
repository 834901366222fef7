#!/bin/bash
# Issue 24 (the house, second pass), before/after: CartPole time to solve (ABBA, 3 seeds a round)
# and Pong throughput with the defaults (ABBABAAB, 90 s a round). Before = 7bb606a (a git worktree
# at /tmp/before), after = the final commit of the refactor (a worktree at /tmp/after). Both run
# with the same virtual environment; PYTHONPATH picks the tree. Output: /tmp/house2/.
set -u
. /work/main/.venv/bin/activate
out=/tmp/house2
mkdir -p $out
cd $out
tree() { case $1 in A*) echo /tmp/before;; B*) echo /tmp/after;; esac; }
for round in A1 B1 B2 A2; do
  t=$(tree $round)
  PYTHONPATH=$t python $t/benchmarks/cartpole_time_to_solve.py --seeds 3 \
    --json $out/cartpole_$round.json > $out/cartpole_$round.txt 2>&1
  echo "cartpole $round rc=$? $(date +%T)" >> $out/progress
done
for round in A1 B1 B2 A2 B3 A3 A4 B4; do
  t=$(tree $round)
  PYTHONPATH=$t python $t/benchmarks/throughput.py --actors 2 --seconds 90 --raw-seconds 3 \
    --configs defaults --json $out/pong_$round.json > $out/pong_$round.txt 2>&1
  echo "pong $round rc=$? $(date +%T)" >> $out/progress
done
echo done >> $out/progress
