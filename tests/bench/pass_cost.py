"""Reconcile pass cost against cluster size, pure: does a pass cost O(change) or O(cluster)?

Run: ``.venv/bin/python tests/bench/pass_cost.py [--sizes 10000,20000,50000,100000] [--rounds 5]``

Builds a cluster in the informer's cache (through the real informer, fed by the in-memory etcd
of the unit tests: ``tests/unit/reconcile_helpers.py``): 50 containers per node, 500 replicas
per service, every container placed and RUNNING, every service's status current. Then times
``plan_pass`` (planning only, no etcd) for:

- an idle pass: nothing dirty (what the orchestrator runs for a timer or a heartbeat-free wake-up);
- one service dirty: one container of one service reported a new status.

Both should stay flat as the cluster grows: they change nothing or one service. The median of
``--rounds`` is printed with the load average (the box is shared). Not collected by pytest.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import time
from datetime import timedelta
from pathlib import Path

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from ccs.v1 import resources_pb2 as pb
from controlplane.reconcile.containment import ClusterFailures
from controlplane.reconcile.orchestrator import plan_pass
from controlplane.store import keys
from controlplane.store.codec import encode
from tests.unit.reconcile_helpers import C, Cluster
from tests.unit.test_planner_helpers import at, node

PER_NODE = 50
REPLICAS = 500
NOW = 100.0


def build(size: int) -> Cluster:
    c = Cluster()
    nodes = max(1, size // PER_NODE)
    for i in range(nodes):
        c.put(keys.node(C, f"n{i:04d}"), node(f"n{i:04d}", heartbeat=NOW - 1))
    c.put(keys.node(C, "n1"), node("n1", heartbeat=NOW - 1))
    k = 0
    for a in range(size // REPLICAS):
        app = f"app{a:03d}"
        c.add_app(app, web=REPLICAS)
        svc = c.service(app, "web")
        svc.status.desired = svc.status.running = REPLICAS
        c.put(keys.service(C, app, "web"), svc)
        for slot in range(1, REPLICAS + 1):
            x = pb.Container(cluster=C, application=app, service="web", node=f"n{k % nodes:04d}", slot=slot,
                             desired_state=pb.DESIRED_STATE_RUNNING, spec=svc.spec,
                             spec_generation=svc.generation,
                             status=pb.ContainerStatus(state=pb.CONTAINER_STATE_RUNNING))
            x.meta.name = f"web-{slot}"
            x.meta.id = f"{app}-{slot:04d}"
            c.etcd.put(keys.container(C, app, "web", x.meta.name), encode(x))
            k += 1
    return c


async def one_pass(c: Cluster, dirty: set[tuple[str, str]]) -> float:
    t0 = time.perf_counter()
    await plan_pass(c.state, set(dirty), False, failures=ClusterFailures(), now=at(NOW), mono_now=NOW,
                    heartbeat_period=timedelta(seconds=5), down_grace=timedelta(seconds=30))
    return time.perf_counter() - t0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="10000,20000,50000,100000")
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    print(f"{'containers':>10} {'nodes':>6} {'idle pass ms':>13} {'1 service ms':>13}  load average")
    for size in [int(s) for s in args.sizes.split(",")]:
        c = build(size)
        idle = [asyncio.run(one_pass(c, set())) for _ in range(args.rounds)]
        one = [asyncio.run(one_pass(c, {("app000", "web")})) for _ in range(args.rounds)]
        load = " ".join(Path("/proc/loadavg").read_text().split()[:3])
        print(f"{size:>10,} {len(c.state.nodes):>6} {statistics.median(idle) * 1000:>13.1f} "
              f"{statistics.median(one) * 1000:>13.1f}  {load}", flush=True)


if __name__ == "__main__":
    main()
