"""Real hosts (issue 27): a cluster started by the launch file's own start commands on separate
network hosts (namespaces with their own addresses, tests/integration/hosts.py), apex-dqn run
from the head against it, and faults at the network level: a worker cut off and restored, a
worker killed for good, a head that is not there.

Marked ``hosts``: the README's test command runs them after the rest of the suite
(``pytest -m hosts``). They skip, saying why, where namespaces cannot be made (no root)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from apex_dqn.core.metrics import read_jsonl
from tests.integration import hosts as net
from tests.integration import hosts_probe

ROOT = Path(__file__).resolve().parents[2]
LAUNCH = ROOT / "launch" / "onprem.yaml"

# Why namespaces cannot be made here (None: they can). With APEX_DQN_REQUIRE_HOSTS set (.ci/run
# sets it) the tests fail instead of skipping, so CI cannot pass without running them.
UNAVAILABLE = net.unavailable()
REQUIRED = bool(os.environ.get("APEX_DQN_REQUIRE_HOSTS"))

pytestmark = [
    pytest.mark.hosts,
    pytest.mark.ray,
    pytest.mark.slow,
    pytest.mark.timeout(600),
    pytest.mark.skipif(bool(UNAVAILABLE) and not REQUIRED, reason=str(UNAVAILABLE)),
]

# Placement: each actor asks for all the CPUs of a worker host (Ray's count on it, read by the
# probe), so the actors can only run on the workers, one on each (the head's CPUs hold the
# learner, its shard and the evaluator), and an actor whose host is gone has nowhere to go until
# a host with that many free CPUs joins. The replay never fills (CartPole's transitions are 53
# bytes), so its size shows any acknowledged transition lost.
RUN = [
    "actors.num_actors=2",
    "replay.capacity=4000000",
    "+learner.resources.learner=1",
    "train.report_interval_s=1",
    "checkpoint.every_s=5",
    "train.plot=false",
]

PROBE = ROOT / "tests" / "integration" / "hosts_probe.py"


class Cluster:
    """A head and two workers started by the launch file's commands; apex-dqn from the head."""

    def __init__(self, tmp: Path, launch: Path = LAUNCH) -> None:
        self.tmp = tmp
        self.net = net.Network()
        try:
            self.head = self.net.add_host("head")
            self.workers = [self.net.add_host(f"w{i}") for i in (1, 2)]
        except BaseException:
            self.net.close()
            raise
        self.head_cmds, self.worker_cmds, self.skipped = net.launch_commands(launch)
        self.address = f"{self.head.ip}:{net.RAY_PORT}"

    def start(self) -> None:
        net.start_ray(self.head, self.head_cmds, self.head)
        for worker in self.workers:
            net.start_ray(worker, self.worker_cmds, self.head)
        self.wait_for_nodes(3)

    def probe(self) -> dict:
        """The live nodes' addresses and where each role runs (hosts_probe.py, from the head)."""
        proc = self.head.run(f"{sys.executable} {PROBE} {self.address}", timeout=90)
        assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
        return hosts_probe.parse(proc.stdout)

    def alive_nodes(self) -> set[str]:
        return set(self.probe()["nodes"])

    def placement(self) -> dict[str, str | None]:
        return self.probe()["roles"]

    def wait_for_nodes(self, count: int, timeout: float = 120.0) -> None:
        deadline = time.monotonic() + timeout
        while len(nodes := self.alive_nodes()) != count:
            assert time.monotonic() < deadline, f"{count} nodes expected, alive: {nodes}"
            time.sleep(2)

    def train(self, out: Path, *overrides: str) -> subprocess.Popen:
        """apex-dqn from the head host, against the cluster, in the background."""
        cpus = self.probe()["cpus"][self.workers[0].ip]
        cmd = " ".join(
            [sys.executable, "-m", "apex_dqn", f"ray.address={self.address}", *RUN,
             f"actors.num_cpus={cpus:g}", *overrides, f"output_dir={out}"]
        )  # fmt: skip
        return self.head.popen(f"cd {ROOT} && exec {cmd}", self.tmp / "run.log")

    def log(self) -> str:
        path = self.tmp / "run.log"
        return path.read_text() if path.exists() else ""


@pytest.fixture
def cluster(tmp_path) -> Iterator[Cluster]:
    if UNAVAILABLE:
        pytest.fail(f"APEX_DQN_REQUIRE_HOSTS is set, but {UNAVAILABLE}")
    c = Cluster(tmp_path)
    try:
        yield c
    finally:
        c.net.close()


def _records(out: Path) -> list[dict]:
    path = out / "metrics.jsonl"
    return read_jsonl(path) if path.is_file() else []  # the run is writing it


def _wait(predicate, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(1)


def _finish(proc: subprocess.Popen, cluster: Cluster, timeout: float) -> None:
    try:
        proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        raise AssertionError(f"apex-dqn did not finish: {cluster.log()[-3000:]}") from None
    assert proc.returncode == 0, cluster.log()[-3000:]


def test_the_launch_file_starts_hosts_and_a_run_learns_cartpole_across_them(cluster):
    """The head and worker start commands of launch/onprem.yaml, run as written on three
    hosts (less ``ray stop`` and the autoscaler's file, said so), form one cluster; apex-dqn
    from the head places the learner and its shard on the head (the ``learner`` resource the
    head's command offers) and the actors on the workers, over the network, and learns."""
    assert cluster.skipped and all("ray stop" in n or "autoscaling" in n for n in cluster.skipped)
    cluster.start()
    out = cluster.tmp / "run"
    proc = cluster.train(out, "train.max_seconds=240")
    _wait(lambda: any(r["charts/learner_steps"] > 0 for r in _records(out)), 120, "updates")
    where = cluster.placement()
    actors = sorted(ip for name, ip in where.items() if "-actor" in name)
    assert actors == sorted(w.ip for w in cluster.workers), where
    assert {ip for name, ip in where.items() if "-actor" not in name} == {cluster.head.ip}, where
    _finish(proc, cluster, 300)
    summary = json.loads((out / "summary.json").read_text())
    assert summary["solved"], summary  # CartPole's 475, confirmed


def test_the_cloud_launch_files_start_commands_form_a_cluster_too(tmp_path):
    """launch/aws-gpu.yaml's own head and worker start commands (token auth, no learner
    resource: its head is the GPU machine) join three hosts into one cluster. Its setup
    commands install from the network and its node types need AWS: those remain on paper."""
    if UNAVAILABLE:
        pytest.fail(f"APEX_DQN_REQUIRE_HOSTS is set, but {UNAVAILABLE}")
    cluster = Cluster(tmp_path, ROOT / "launch" / "aws-gpu.yaml")
    try:
        assert cluster.head_cmds and all("ray start" in c for c in cluster.head_cmds)
        assert all("ray stop" in n or "autoscaling" in n for n in cluster.skipped)
        cluster.start()  # waits for the three nodes
        assert cluster.alive_nodes() == {h.ip for h in (cluster.head, *cluster.workers)}
    finally:
        cluster.net.close()


def test_a_worker_cut_off_for_30_s_loses_its_actor_and_gets_work_again_once_back(cluster):
    """A worker's link goes down for 30 s: Ray declares the host dead, the run goes on with the
    other actor and counts the loss. Once the link is back and the host's Ray is started again
    (as a cluster manager would), the lost actor is placed on it and the run uses it."""
    cluster.start()
    out = cluster.tmp / "run"
    proc = cluster.train(out, "train.max_seconds=400", "train.stop_on_target=false")
    _wait(lambda: any(r["charts/learner_steps"] > 0 for r in _records(out)), 120, "updates")
    lost = cluster.workers[0]
    before_cut = _records(out)
    cluster.net.cut(lost)
    cut_time = time.monotonic()
    _wait(lambda: lost.ip not in cluster.alive_nodes(), 90, "Ray to declare the host dead")
    cut_at = _records(out)[-1]
    time.sleep(max(0.0, cut_time + 30.0 - time.monotonic()))  # the link is down 30 s at least
    cluster.net.restore(lost)
    # What a cluster manager does for a host whose Ray was declared dead: start it again.
    lost.kill()
    net.start_ray(lost, cluster.worker_cmds, cluster.head)
    cluster.wait_for_nodes(3)
    _wait(
        lambda: (
            sorted(ip for n, ip in cluster.placement().items() if "-actor" in n)
            == sorted(w.ip for w in cluster.workers)
        ),
        120,
        "the lost actor to run on the host again",
    )
    back_at = _records(out)[-1]
    time.sleep(10)
    last = _records(out)[-1]
    # Env steps grew while the host was away (the other actor) and since it is back.
    assert back_at["charts/env_steps"] > cut_at["charts/env_steps"]
    assert last["charts/env_steps"] > back_at["charts/env_steps"]
    proc.terminate()  # SIGTERM: the run stops as a user's would, with its outputs
    proc.wait(timeout=120)
    assert proc.returncode == 128 + 15, cluster.log()[-3000:]
    summary = json.loads((out / "summary.json").read_text())
    assert summary["stop_reason"] == "interrupted by SIGTERM", summary
    # The loss counted (a survivor's call may also fail while Ray learns of the death), the
    # actor restarted on the host that came back, none down.
    assert summary["actor_failures"] >= 1 and summary["actor_restarts"] >= 1, summary
    assert summary["actors_down"] == [], summary
    # Nothing acknowledged was lost: from the last record before the cut on, the replay (its
    # shard is on the head; never full, so nothing is evicted) never shrank, and no shard failed.
    records = _records(out)[len(before_cut) - 1 :]
    sizes = [r["replay/size"] for r in records]
    assert None not in sizes and sizes == sorted(sizes), sizes
    assert sizes[-1] < records[-1]["replay/capacity"], "the replay filled: the check is void"
    assert summary["shard_failures"] == 0, summary


def test_a_worker_killed_for_good_leaves_the_run_going_on_the_rest(cluster):
    """Every process of a worker host dies and it never comes back: its actor has nowhere to
    go (each needs a whole worker), and the run goes on with the other one to its end."""
    cluster.start()
    out = cluster.tmp / "run"
    proc = cluster.train(out, "train.max_seconds=90", "train.stop_on_target=false")
    _wait(lambda: any(r["charts/learner_steps"] > 0 for r in _records(out)), 120, "updates")
    cluster.workers[0].kill()
    killed_at = _records(out)[-1]
    _finish(proc, cluster, 240)
    last = _records(out)[-1]
    summary = json.loads((out / "summary.json").read_text())
    # The loss is counted, and the actor is still down at the end: nowhere to restart it.
    assert summary["actor_failures"] >= 1 and len(summary["actors_down"]) == 1, summary
    assert last["actors/failures"] >= 1 and last["actors/down"] == 1
    assert last["charts/env_steps"] > killed_at["charts/env_steps"] + 5_000
    assert last["charts/learner_steps"] > killed_at["charts/learner_steps"]


def test_a_head_that_is_not_there_fails_in_seconds_with_one_line(cluster):
    """ray.address at a host where no Ray runs (connection refused) and at an address no host
    has (no answer): one line naming the key, exit 2, within seconds; no run directory."""
    for address in (f"{cluster.workers[0].ip}:{net.RAY_PORT}", f"{net.SUBNET_PREFIX}99:6379"):
        out = cluster.tmp / f"run-{address}"
        start = time.monotonic()
        proc = cluster.head.run(
            f"cd {ROOT} && {sys.executable} -m apex_dqn ray.address={address} output_dir={out}",
            timeout=60,
        )
        took = time.monotonic() - start
        lines = [x for x in proc.stderr.splitlines() if x.strip()]
        assert proc.returncode == 2, proc.stderr[-2000:]
        assert len(lines) == 1 and lines[0].startswith(f"apex-dqn: error: ray.address={address}")
        assert "no Ray head answers" in lines[0] and took < 20, (took, lines)
        assert not out.exists()
