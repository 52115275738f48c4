"""Scheduler throughput: 500 nodes x 20,000 containers, in pure Python.

Run: ``.venv/bin/python tests/bench/scheduler.py [--nodes 500] [--containers 20000]``

It places 400 services of 50 replicas (a mix of plain, spread over zones, constrained by label,
with CPU/memory reservations and with a host port) into one ClusterView, as one reconcile pass
would, and prints placements per second. It then rebuilds a view from the 20,000 placed containers
(the per-pass snapshot cost) and places one more service into it. Not collected by pytest.
"""

from __future__ import annotations

import argparse
import time

from ccs.v1 import resources_pb2 as pb
from controlplane.scheduler import ClusterView, ServiceRef

ZONES = ("a", "b", "c", "d", "e")
GIB = 1 << 30


def make_nodes(count: int) -> list[pb.Node]:
    nodes = []
    for i in range(count):
        node = pb.Node()
        node.meta.name = f"node-{i:04d}"
        node.meta.id = f"id{i:04d}"
        node.meta.labels["zone"] = ZONES[i % len(ZONES)]
        node.meta.labels["disk"] = "ssd" if i % 3 else "hdd"
        node.spec.availability = pb.NODE_AVAILABILITY_ACTIVE
        node.spec.role = pb.NODE_ROLE_WORKER
        node.status.state = pb.NODE_STATE_READY
        node.status.hostname = node.meta.name
        node.status.capacity.cpus = 64
        node.status.capacity.memory_bytes = 256 * GIB
        nodes.append(node)
    return nodes


def make_spec(index: int) -> pb.ServiceSpec:
    spec = pb.ServiceSpec(image="local/busybox:1", replicas=50)
    kind = index % 5
    if kind == 1:
        spec.placement.spread.append("node.labels.zone")
    elif kind == 2:
        spec.placement.constraints.append("node.labels.disk==ssd")
        spec.placement.constraints.append("node.role!=manager")
    elif kind == 3:
        spec.resources.reservations.cpus = 0.25
        spec.resources.reservations.memory_bytes = 256 << 20
    elif kind == 4:
        spec.ports.add(target=80, published=20000 + index, protocol="tcp", mode="host")
        spec.placement.max_replicas_per_node = 2
    return spec


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--nodes", type=int, default=500)
    parser.add_argument("--containers", type=int, default=20_000)
    parser.add_argument("--replicas", type=int, default=50)
    args = parser.parse_args()
    nodes = make_nodes(args.nodes)
    services = [
        ServiceRef("bench", f"svc-{i:04d}", make_spec(i))
        for i in range(args.containers // args.replicas)
    ]

    start = time.perf_counter()
    view = ClusterView(nodes)
    placed: list[pb.Container] = []
    unplaced = 0
    for service in services:
        names = [f"{service.name}-{slot}" for slot in range(args.replicas)]
        result = view.place(service, names)
        unplaced += len(result.unplaced)
        for name, node in result.assigned.items():
            container = pb.Container(
                application=service.application, service=service.name, node=node,
                desired_state=pb.DESIRED_STATE_RUNNING,
            )
            container.meta.name = name
            container.spec.CopyFrom(service.spec)
            placed.append(container)
    elapsed = time.perf_counter() - start
    total = len(placed)
    print(f"{args.nodes} nodes, {len(services)} services, {total} placed, {unplaced} unplaced")
    print(f"one pass from empty: {elapsed:.2f} s = {total / elapsed:,.0f} placements/s")

    start = time.perf_counter()
    view = ClusterView(nodes, placed)
    built = time.perf_counter() - start
    extra = ServiceRef("bench", "extra", make_spec(1))
    start = time.perf_counter()
    result = view.place(extra, [f"extra-{slot}" for slot in range(args.replicas)])
    more = time.perf_counter() - start
    print(f"snapshot of {total} live containers: {built:.2f} s; "
          f"then {len(result.assigned)} more placements in {more * 1000:.1f} ms")


if __name__ == "__main__":
    main()
