"""Run on a host of a test cluster (tests/integration/test_hosts.py): print, as one JSON line
after MARKER, the addresses of the cluster's live nodes, the CPUs each offers (Ray's own count),
and on which address each of apex-dqn's actors, shards and learners runs (None for one that does
not answer: dead or restarting).

    python tests/integration/hosts_probe.py 198.18.7.1:6379
"""

from __future__ import annotations

import json
import sys

import ray

NAMESPACE = "apex-dqn"  # apex_dqn.runtime.ray_runtime.NAMESPACE
ROLES = ("-actor", "-shard", "-learner")  # the named roles that answer node_id()
# Ray writes its own warnings to stdout too, before and after ours (a loaded host: "raylet has
# lagging heartbeats"), so the result line is marked and read by its mark, not by its place.
MARKER = "hosts_probe: "


def parse(stdout: str) -> dict:
    """The probe's result from its whole stdout, whatever Ray printed around it."""
    lines = [line for line in stdout.splitlines() if line.startswith(MARKER)]
    if len(lines) != 1:
        raise ValueError(f"expected one line starting {MARKER!r} in the probe's output: {stdout!r}")
    return json.loads(lines[0][len(MARKER) :])


def main(address: str) -> None:
    ray.init(address=address, namespace=NAMESPACE, logging_level="ERROR")
    alive = [n for n in ray.nodes() if n["Alive"]]
    ips = {n["NodeID"]: n["NodeManagerAddress"] for n in alive}
    cpus = {n["NodeManagerAddress"]: n["Resources"].get("CPU", 0.0) for n in alive}
    where: dict[str, str | None] = {}
    for actor in ray.util.list_named_actors(all_namespaces=True):
        name = actor["name"]
        if actor["namespace"] != NAMESPACE or not any(r in name for r in ROLES):
            continue
        try:
            handle = ray.get_actor(name, namespace=NAMESPACE)
            where[name] = ips.get(ray.get(handle.node_id.remote(), timeout=10))
        except Exception:  # dead, restarting or not placed: no address
            where[name] = None
    print(MARKER + json.dumps({"nodes": sorted(ips.values()), "cpus": cpus, "roles": where}))


if __name__ == "__main__":
    main(sys.argv[1])
