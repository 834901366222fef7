#!/bin/bash
# Before (36a55a9) / after (be889c8) in ABBA order: CartPole time to solve, then Pong throughput.
. /work/main/.venv/bin/activate
cd /tmp/ba
for round in A1 B1 B2 A2; do
  case $round in A*) tree=/tmp/before;; B*) tree=/work/main;; esac
  PYTHONPATH=$tree python $tree/benchmarks/cartpole_time_to_solve.py --seeds 3 --json /tmp/ba/cartpole_$round.json > /tmp/ba/cartpole_$round.txt 2>&1
  echo "cartpole $round rc=$?" >> /tmp/ba/progress
done
for round in A1 B1 B2 A2; do
  case $round in A*) tree=/tmp/before;; B*) tree=/work/main;; esac
  PYTHONPATH=$tree python $tree/benchmarks/throughput.py --actors 2 --seconds 60 --raw-seconds 3 --configs defaults --json /tmp/ba/pong_$round.json > /tmp/ba/pong_$round.txt 2>&1
  echo "pong $round rc=$?" >> /tmp/ba/progress
done
echo done >> /tmp/ba/progress
