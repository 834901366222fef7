#!/bin/bash
# usage: spy_run.sh TREE TAG : 110 s pong run; py-spy the learner (and an actor) from 50 s to 95 s
tree=$1; tag=$2
. /work/main/.venv/bin/activate
cd /tmp/prof
rm -rf /tmp/prof/run_$tag
PYTHONPATH=$tree python -m apex_dqn experiment=pong actors.num_cpus=0.4 train.max_seconds=110 train.report_interval_s=5 eval.enabled=false checkpoint.every_s=0 train.plot=false output_dir=/tmp/prof/run_$tag > /tmp/prof/out_$tag.txt 2>&1 &
bp=$!
sleep 50
lp=$(pgrep -f 'ray::LearnerHost' | head -1)
ap=$(pgrep -f 'ray::ActorHost' | head -1)
py-spy record -p $lp -d 45 -r 50 -f raw -o /tmp/prof/learner_$tag.txt --nonblocking > /dev/null 2>&1 &
py-spy record -p $ap -d 45 -r 50 -f raw -o /tmp/prof/actor_$tag.txt --nonblocking > /dev/null 2>&1 &
wait $bp
echo done $tag >> /tmp/prof/progress_spy
