#!/bin/bash
# Scale benchmark before (455d5ce: actors.nice 5) / after (auto niceness), rounds B A A B.
. /work/main/.venv/bin/activate
cd /tmp/after/benchmarks
for round in before_1 after_1 after_2 before_2; do
  case $round in before*) tree=/tmp/before;; after*) tree=/tmp/after;; esac
  PYTHONPATH=$tree python scale.py --points 8x1,32x4,64x8 --nodes 4 --seconds 30 --json /tmp/scale/$round.json > /tmp/scale/$round.txt 2>&1
  echo "$round rc=$? $(date +%T)" >> /tmp/scale/progress
done
echo done >> /tmp/scale/progress
