#!/usr/bin/env bash
# MinAtar Breakout's learner with 1 (the default) and 2 torch threads (ray.num_cpus=3
# learner.num_cpus=2, as benchmarks/throughput.py's learner_2_threads), alternating, 2 rounds
# of 90 s each, evaluation off; prints each run's learner updates/s from its first report with
# updates to its last, into minatar_threads.txt.
#   bash docs/figures/learner_threads/minatar_threads.sh
set -euo pipefail
cd "$(dirname "$0")/../../.."
out=docs/figures/learner_threads/minatar_threads.txt
tmp=$(mktemp -d)
: > "$out"
for round in 1 2; do
  for variant in threads1 threads2; do
    extra=()
    [[ $variant == threads2 ]] && extra=(ray.num_cpus=3 learner.num_cpus=2)
    python -m apex_dqn env=minatar env.id=MinAtar/Breakout-v1 seed=100 train.max_seconds=90 \
      eval.enabled=false checkpoint.every_s=0 train.plot=false \
      output_dir="$tmp/$variant-$round" "${extra[@]}" > /dev/null 2>&1
    python - "$tmp/$variant-$round/metrics.jsonl" "$variant" "$round" >> "$out" <<'PY'
import json, sys
rs = [json.loads(x) for x in open(sys.argv[1]) if x.strip()]
t = [r for r in rs if r["charts/learner_steps"] > 0]
a, b = t[0], t[-1]
rate = (b["charts/learner_steps"] - a["charts/learner_steps"]) / (b["charts/wall_s"] - a["charts/wall_s"])
print(f"{sys.argv[2]} round {sys.argv[3]}: {rate:.1f} updates/s, {b['charts/learner_steps']} updates")
PY
  done
done
git rev-parse HEAD >> "$out"
grep -m1 "model name" /proc/cpuinfo >> "$out"
cat "$out"
