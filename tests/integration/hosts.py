"""Separate network hosts on one Linux machine, for tests of real multi-host Ray clusters.

Each host is a network namespace with its own loopback and one address from the benchmarking
range 198.18.0.0/15 (RFC 2544), never a private or public range. The hosts' veth links meet
at a bridge that itself lives in a namespace of its own, so the root namespace gets no address
and no route into the hosts' network, and the bridge routes nowhere: no packet can leave the
test. A host's link can be cut
and restored at the bridge, and a host can be killed (every process in its namespace).
Everything is removed on ``close()``, also when a test fails.

Each host also gets its own Ray temp dir (``RAY_TMPDIR``), as a separate machine has its own
``/tmp/ray``. The launch files' start commands are read from the YAML and run as written, but
for the cloud-only parts ``launch_commands`` names and skips.

Needs root and iproute2 (``unavailable()`` says why not, for a skip).
"""

from __future__ import annotations

import contextlib
import os
import re
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import yaml

# 198.18.0.0/15 is reserved for benchmarking network devices (RFC 2544): never routed.
SUBNET_PREFIX = "198.18.7."
PREFIX_LEN = 24
RAY_PORT = 6379


def unavailable() -> str | None:
    """Why namespaces cannot be made here (None: they can)."""
    if shutil.which("ip") is None:
        return "needs iproute2's ip"
    if os.geteuid() != 0:
        return "needs root (ip netns add)"
    probe = f"adqprobe{os.getpid()}"
    made = subprocess.run(["ip", "netns", "add", probe], capture_output=True, text=True)
    if made.returncode != 0:
        return f"ip netns add failed: {made.stderr.strip()}"
    subprocess.run(["ip", "netns", "del", probe], capture_output=True)
    return None


def _ip(*args: str) -> None:
    proc = subprocess.run(["ip", *args], capture_output=True, text=True)
    if proc.returncode != 0:
        raise RuntimeError(f"ip {' '.join(args)}: {proc.stderr.strip()}")


@dataclass
class Host:
    """One host: a namespace, its address, its link's end at the bridge, its own temp dir."""

    name: str
    ns: str
    ip: str
    bridge_end: str
    tmp: Path
    env: dict[str, str] = field(default_factory=dict)

    def _argv(self, command: str) -> list[str]:
        return ["ip", "netns", "exec", self.ns, "bash", "-c", command]

    def _env(self, extra: dict[str, str] | None) -> dict[str, str]:
        # This interpreter's bin first: `ray` and `apex-dqn` as the launch file's setup
        # commands install them on a node.
        path = f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"
        env = {**os.environ, "PATH": path, **self.env, "RAY_TMPDIR": str(self.tmp)}
        return {**env, **(extra or {})}

    def run(
        self, command: str, timeout: float = 120.0, env: dict[str, str] | None = None
    ) -> subprocess.CompletedProcess[str]:
        """Run a shell command on this host; its output, whatever its exit code."""
        return subprocess.run(
            self._argv(command), capture_output=True, text=True, timeout=timeout,
            env=self._env(env), stdin=subprocess.DEVNULL,
        )  # fmt: skip

    def popen(self, command: str, log: Path, env: dict[str, str] | None = None) -> subprocess.Popen:
        """Start a shell command on this host in the background, its output into ``log``."""
        with open(log, "w") as out:
            return subprocess.Popen(
                self._argv(command), stdout=out, stderr=subprocess.STDOUT,
                env=self._env(env), stdin=subprocess.DEVNULL, start_new_session=True,
            )  # fmt: skip

    def pids(self) -> list[int]:
        """Every process in this host's namespace."""
        proc = subprocess.run(["ip", "netns", "pids", self.ns], capture_output=True, text=True)
        return [int(p) for p in proc.stdout.split()]

    def kill(self, timeout: float = 10.0) -> None:
        """Kill every process of this host (SIGKILL), as when a machine dies."""
        deadline = time.monotonic() + timeout
        while pids := self.pids():
            for pid in pids:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
            if time.monotonic() > deadline:
                raise RuntimeError(f"host {self.name}: processes {pids} survive SIGKILL")
            time.sleep(0.1)


class Network:
    """Hosts joined by a bridge, on addresses 198.18.7.1, .2, ... (see the module docstring)."""

    def __init__(self) -> None:
        sweep_stale()
        self.tag = f"adq{os.getpid()}"
        self.bridge_ns = f"{self.tag}-net"
        self.hosts: list[Host] = []
        self.namespaces: list[str] = []
        self.tmp = Path(tempfile.mkdtemp(prefix="adqh"))  # short: Ray's socket paths
        self.token = secrets.token_hex(32)
        try:
            self._add_ns(self.bridge_ns)
            _ip("-n", self.bridge_ns, "link", "set", "lo", "up")
            _ip("-n", self.bridge_ns, "link", "add", "br0", "type", "bridge")
            _ip("-n", self.bridge_ns, "link", "set", "br0", "up")
        except BaseException:
            self.close()
            raise

    def _add_ns(self, ns: str) -> None:
        _ip("netns", "add", ns)
        self.namespaces.append(ns)  # only once made: close() deletes only what this made

    def add_host(self, name: str) -> Host:
        """A new host, linked to the bridge, with the next address."""
        index = len(self.hosts) + 1
        ns = f"{self.tag}-{name}"
        ip = f"{SUBNET_PREFIX}{index}"
        inner, outer = f"eth{index}", f"{self.tag[:8]}h{index}"
        tmp = self.tmp / name
        tmp.mkdir()
        # Every process of the hosts, drivers included, uses the cluster's token, as the
        # launch files' nodes and a client with ~/.ray/auth_token do.
        env = {"RAY_AUTH_MODE": "token", "RAY_AUTH_TOKEN": self.token}
        host = Host(name, ns, ip, outer, tmp, env=env)
        self._add_ns(ns)
        self.hosts.append(host)
        _ip("-n", ns, "link", "set", "lo", "up")
        _ip("-n", ns, "link", "add", inner, "type", "veth", "peer", "name", outer,
            "netns", self.bridge_ns)  # fmt: skip
        _ip("-n", ns, "addr", "add", f"{ip}/{PREFIX_LEN}", "dev", inner)
        _ip("-n", ns, "link", "set", inner, "up")
        # A default route into the bridge, as a machine has one: Ray finds a node's own address
        # by the route out (no route: 127.0.0.1, which the other hosts cannot reach). Nothing
        # routes beyond the bridge, so nothing leaves.
        _ip("-n", ns, "route", "add", "default", "dev", inner)
        _ip("-n", self.bridge_ns, "link", "set", outer, "master", "br0")
        _ip("-n", self.bridge_ns, "link", "set", outer, "up")
        return host

    def cut(self, host: Host) -> None:
        """Take the host's link down at the bridge: it stays up, but nothing reaches it."""
        _ip("-n", self.bridge_ns, "link", "set", host.bridge_end, "down")

    def restore(self, host: Host) -> None:
        """Bring the host's link back up."""
        _ip("-n", self.bridge_ns, "link", "set", host.bridge_end, "up")

    def close(self) -> None:
        """Kill every host's processes and delete every namespace and the temp dirs."""
        for host in self.hosts:
            with contextlib.suppress(RuntimeError):
                host.kill()
        for ns in self.namespaces:
            subprocess.run(["ip", "netns", "del", ns], capture_output=True)
        shutil.rmtree(self.tmp, ignore_errors=True)


def sweep_stale() -> None:
    """Remove the namespaces (and kill the processes) of test networks whose pytest died
    without closing them (a hard kill): named adq<pid>-..., with that pid gone."""
    listed = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout
    for ns in (line.split()[0] for line in listed.splitlines() if line.strip()):
        match = re.fullmatch(r"adq(\d+)-\w+", ns)
        if match is None or Path(f"/proc/{match[1]}").exists():
            continue
        pids = subprocess.run(["ip", "netns", "pids", ns], capture_output=True, text=True)
        for pid in pids.stdout.split():
            with contextlib.suppress(ProcessLookupError):
                os.kill(int(pid), signal.SIGKILL)
        subprocess.run(["ip", "netns", "del", ns], capture_output=True)


# Parts of the launch files' start commands that only make sense on machines `ray up` manages.
SKIPPED = {
    r"^ray stop$": (
        "`ray stop` stops every Ray process of the machine, here every host's: the harness stops "
        "a host by killing its namespace's processes instead"
    ),
    r"\s--autoscaling-config=\S+": (
        "`--autoscaling-config` names the file `ray up` writes for the autoscaler; no autoscaler "
        "runs here"
    ),
}


def launch_commands(path: Path) -> tuple[list[str], list[str], list[str]]:
    """The launch file's head and worker start commands, less the cloud-only parts; and a line
    for each part skipped, saying why."""
    spec = yaml.safe_load(path.read_text())
    notes: list[str] = []

    def kept(commands: list[str]) -> list[str]:
        out = []
        for command in commands:
            for pattern, why in SKIPPED.items():
                if re.search(pattern, command):
                    notes.append(f"skipped {pattern!r} in {command!r}: {why}")
                    command = re.sub(pattern, "", command)
            if command.strip():
                out.append(command)
        return out

    head = kept(spec["head_start_ray_commands"])
    worker = kept(spec["worker_start_ray_commands"])
    return head, worker, notes


def start_ray(host: Host, commands: list[str], head: Host, timeout: float = 120.0) -> None:
    """Run a launch file's start commands on ``host`` as the cluster launcher would (with
    ``RAY_HEAD_IP`` set to the head's address); RuntimeError with their output if one fails."""
    for command in commands:
        proc = host.run(command, timeout=timeout, env={"RAY_HEAD_IP": head.ip})
        if proc.returncode != 0:
            raise RuntimeError(
                f"{host.name}: {command!r} exited {proc.returncode}: {proc.stdout[-2000:]}"
                f"{proc.stderr[-2000:]}"
            )
