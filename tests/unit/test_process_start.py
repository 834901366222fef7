"""time_to_solve_s counts from when the process starts running apex-dqn, not from when the OS
created it: a shell that exec's into apex-dqn after other commands does not add their time."""

from __future__ import annotations

import subprocess
import sys

CODE = (
    "import time, psutil, os\n"
    "from apex_dqn.run.state import RunTracker\n"
    "t = RunTracker(env_id='CartPole-v1', seed=0, target_return=1.0, batch_size=1)\n"
    "now = time.time()\n"
    "print(now - t.process_start, now - psutil.Process(os.getpid()).create_time())\n"
)


def test_the_clock_starts_at_apex_dqn_not_at_the_shell_that_exec_d_into_it():
    cmd = f'sleep 2 && exec {sys.executable} -c "{CODE}"'
    out = subprocess.run(["bash", "-c", cmd], capture_output=True, text=True, check=True)
    ours, os_creation = map(float, out.stdout.split())
    assert os_creation >= 2.0  # the OS counts the sleep: the case this guards against
    assert ours < 1.5, out.stdout


def test_start_up_milestones_count_from_the_process_start_and_keep_the_first_time():
    from apex_dqn.core.reports import ActorReport, LearnerReport
    from apex_dqn.core.types import ReplayTotals
    from apex_dqn.run.state import RunTracker

    t = RunTracker(
        env_id="CartPole-v1",
        seed=0,
        target_return=1.0,
        batch_size=1,
        process_start=100.0,
        train_start=101.0,
    )
    t.mark("runtime_ready", at=103.5)
    t.mark("runtime_ready", at=105.0)  # a later mark of the same milestone changes nothing
    t.ingest_actor(0, ActorReport(env_steps=0, pid=1))  # an actor that only waited: no steps
    assert "first_actor_call" not in t.milestones

    def learner_call(first: float | None) -> LearnerReport:
        return LearnerReport(
            updates=1,
            batches_learned=1,
            learner_steps=1,
            weights_version=0,
            skipped_updates=0,
            replay=ReplayTotals(added=1, sampled=1),
            metrics={},
            shard_failures=0,
            shard_restarts=0,
            shards_down=0,
            seconds={},
            first_update_at=first,
        )

    t.ingest_learner(learner_call(107.25))
    t.ingest_learner(learner_call(120.0))  # a restarted learner's own first update
    summary = t.summary()
    assert summary["startup_s"] == {"train_called": 1.0, "runtime_ready": 3.5, "first_update": 7.25}
    assert summary["first_update_s"] == 7.25 and summary["started_at"] == 100.0
