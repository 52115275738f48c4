"""Network maps (controlplane/netmap): what one change costs the dispatcher, pure, no I/O.

Two clusters built in memory as the informer holds them:

- scale: 2,000 nodes, 40 applications x 500 replicas, each application on 500 nodes (20,000
  containers, 20,000 blocks), every node connected;
- hollow: the shape of ``hollow.py --nodes 500 --apps 40 --replicas 500``: every application on
  every node, so every node's map holds all 20,000 addresses;
- dense: one node running 1,000 single-container applications.

For each: building the cluster's ``NetworkMaps`` (once per cluster, when its first session
opens), every connected node's map (all sessions opening at once), and then one container's
new address: what the dispatcher does (``observe`` + ``settle`` + ``map_for`` of the nodes it
names), against recomputing those nodes' maps from scratch with ``network_map`` (which scans
the cluster once per node), and the bytes that change costs on the wire: every concerned
node's whole map against the deltas the dispatcher sends (issue 15). Run:
``.venv/bin/python tests/bench/netmap.py``.
"""

from __future__ import annotations

import ipaddress
import sys
import time
from pathlib import Path

if __package__ in (None, ""):  # run as a script: this tree, not the one the venv installed
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from ccs.v1 import resources_pb2 as pb
from controlplane.informer import ClusterState
from controlplane.netmap import NetworkMaps, NodeMap, delta, network_map


def build(nodes: int, apps: int, replicas: int) -> ClusterState:
    state = ClusterState("bench", exists=True, pod_cidr="10.0.0.0/8")
    blocks = ipaddress.IPv4Network("10.0.0.0/8").subnets(new_prefix=28)
    for i in range(nodes):
        n = pb.Node(cluster="bench", status=pb.NodeStatus(address=str(ipaddress.IPv4Address(0xC0000000 + i + 1))))
        n.meta.name = f"n{i}"
        state.nodes[n.meta.name] = n
    for a in range(apps):
        app = f"app{a}"
        state.apps[app] = pb.Application(cluster="bench")
        svc = pb.Service(cluster="bench", application=app, spec=pb.ServiceSpec(image="i"))
        svc.meta.name = "web"
        state.services[(app, "web")] = svc
        for r in range(replicas):
            node = f"n{(a * replicas + r) % nodes}"
            block = next(blocks)
            state.subnets[(node, app, "default", 0)] = pb.SubnetAllocation(
                application=app, network="default", node=node, subnet=str(block))
            c = pb.Container(cluster="bench", application=app, service="web", node=node,
                             desired_state=pb.DESIRED_STATE_RUNNING,
                             status=pb.ContainerStatus(state=pb.CONTAINER_STATE_RUNNING))
            c.meta.name = f"web-{r}"
            c.status.addresses["default"] = str(block.network_address + 2)
            key = (app, "web", c.meta.name)
            state.containers[key] = c
            state._index(key, None, c)
    return state


def clock(fn: object) -> tuple[float, object]:
    t0 = time.perf_counter()
    out = fn()  # type: ignore[operator]
    return time.perf_counter() - t0, out


def run(label: str, state: ClusterState) -> None:
    connected = sorted(state.nodes)
    took_build, maps = clock(lambda: NetworkMaps(state))
    assert isinstance(maps, NetworkMaps)
    took_open, _ = clock(lambda: [maps.map_for(state, n) for n in connected])
    held = {n: maps.parts_for(state, n) for n in connected}  # what each session was sent
    # One container reports a new address.
    key = next(iter(sorted(state.containers)))
    old = state.containers[key]
    new = pb.Container()
    new.CopyFrom(old)
    new.status.addresses["default"] = str(ipaddress.IPv4Address(old.status.addresses["default"]) + 1)
    state.containers[key] = new

    def incremental() -> dict[str, NodeMap]:
        maps.observe(state, "container", key, old, new)
        return {n: maps.parts_for(state, n) for n in maps.settle()}

    took_change, found = clock(incremental)
    assert isinstance(found, dict)
    targets: dict[str, NodeMap] = found
    sent = len(targets)
    whole = sum(len(t.encoded()) for t in targets.values())
    deltas = sum(delta(held[n].version, held[n].held, t).ByteSize() for n, t in targets.items())
    affected = sorted(maps.nodes_of(key[0]))
    took_scratch, _ = clock(lambda: [network_map(state, n) for n in affected])
    print(f"{label}: {len(state.nodes)} nodes, {len(state.containers)} containers, {len(state.subnets)} blocks")
    print(f"  build the cluster's maps: {took_build * 1000:.1f} ms; every node's map at open: {took_open * 1000:.0f} ms")
    print(f"  one new address -> {sent} maps: {took_change * 1000:.1f} ms incremental,"
          f" {took_scratch * 1000:.0f} ms from scratch (x{took_scratch / took_change:.0f})")
    print(f"  on the wire for it: {whole / 1e6:.2f} MB as whole maps, {deltas / 1e6:.3f} MB as deltas"
          f" (x{whole / max(deltas, 1):.0f})")


def main() -> None:
    run("scale", build(2000, 40, 500))
    run("hollow", build(500, 40, 500))
    run("dense", build(1, 1000, 1))


if __name__ == "__main__":
    main()
