#!/bin/bash
# Issue 25, first look at Seaquest: exploration, horizon or capacity? One seed (10, used by no
# tuning run), 10 minutes each from process start, env=minatar defaults but for one change a run,
# one run at a time on the idle machine. Each run's metrics.jsonl and summary.json are copied
# here, into a folder named after the variant.
set -u
. /work/main/.venv/bin/activate
here=$(cd "$(dirname "$0")" && pwd)
base="env=minatar env.id=MinAtar/Seaquest-v1 seed=10 train.max_seconds=600 train.plot=false"
run() {
  name=$1; shift
  out=/tmp/seaquest/$name
  rm -rf "$out"
  python -m apex_dqn $base "$@" output_dir="$out" > /tmp/seaquest_$name.log 2>&1
  echo "$name rc=$? $(date +%T)" >> "$here/progress.txt"
  mkdir -p "$here/$name"
  cp "$out/metrics.jsonl" "$out/summary.json" "$here/$name/"
  cp /tmp/seaquest_$name.log "$here/$name/console.log"
}
for variant in "$@"; do
  case $variant in
    defaults) run defaults ;;
    layer_norm) run layer_norm network.layer_norm=true ;;
    n_step5_gamma995) run n_step5_gamma995 algo.n_step=5 algo.gamma=0.995 ;;
    eps_alpha3) run eps_alpha3 actors.eps_alpha=3 ;;
    adam_eps) run adam_eps learner.adam_eps=1e-8 ;;
  esac
done
echo done >> "$here/progress.txt"
