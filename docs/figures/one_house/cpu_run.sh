#!/bin/bash
# usage: cpu_run.sh TREE TAG
tree=$1; tag=$2
. /work/main/.venv/bin/activate
cd /tmp/prof
PYTHONPATH=$tree python $tree/benchmarks/throughput.py --actors 2 --seconds 90 --raw-seconds 1 --configs defaults --json /tmp/prof/tp_$tag.json > /tmp/prof/tp_$tag.txt 2>&1 &
bp=$!
: > /tmp/prof/ps_$tag.log
while kill -0 $bp 2>/dev/null; do
  echo "T $(date +%s.%N)" >> /tmp/prof/ps_$tag.log
  ps -eo pid=,times=,rss=,args= | grep -E 'ray::|python|raylet|gcs_server|plasma' | grep -v grep >> /tmp/prof/ps_$tag.log
  sleep 5
done
echo done $tag >> /tmp/prof/progress
