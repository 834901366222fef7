#!/bin/bash
# Before (36a55a9) / after (main) Pong throughput, 8 more rounds in ABBABAAB order, 90 s each.
. /work/main/.venv/bin/activate
cd /tmp/ba3
for round in A5 B5 B6 A6 B7 A7 A8 B8; do
  case $round in A*) tree=/tmp/before;; B*) tree=/work/main;; esac
  PYTHONPATH=$tree python $tree/benchmarks/throughput.py --actors 2 --seconds 90 --raw-seconds 3 --configs defaults --json /tmp/ba3/pong_$round.json > /tmp/ba3/pong_$round.txt 2>&1
  echo "pong $round rc=$?" >> /tmp/ba3/progress
done
echo done >> /tmp/ba3/progress
