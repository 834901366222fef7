#!/bin/bash
. /work/main/.venv/bin/activate
cd /tmp/ba
for round in A3 B3 B4 A4; do
  case $round in A*) tree=/tmp/before;; B*) tree=/work/main;; esac
  PYTHONPATH=$tree python $tree/benchmarks/throughput.py --actors 2 --seconds 60 --raw-seconds 3 --configs defaults --json /tmp/ba/pong_$round.json > /tmp/ba/pong_$round.txt 2>&1
  echo "pong $round rc=$?" >> /tmp/ba/progress2
done
echo done >> /tmp/ba/progress2
