"""The assignment hub sends each node its network map: in full when the session opens, then
only when that node's map changes; and re-derives its tables after the cache re-lists.

The input is the real informer fed by ``FakeEtcd`` (tests/unit/reconcile_helpers.py): every
``put`` is one watch batch, so the hub hears of it as it would in production.
"""

from __future__ import annotations

import asyncio

import pytest

from ccs.v1 import agent_pb2
from ccs.v1 import resources_pb2 as pb
from controlplane.dispatcher import hub as hub_module
from controlplane.dispatcher.hub import AssignmentHub, NodeSession
from controlplane.dispatcher.map_sender import QueuedMessage
from controlplane.store import keys
from tests.unit.reconcile_helpers import C, Cluster
from tests.unit.test_planner_helpers import node


def world() -> tuple[Cluster, AssignmentHub]:
    """n1, n2 with a block of "shop" each, n3 with none; shop's web has one container per node."""
    cl = Cluster()
    hub = AssignmentHub(cl.informer, heartbeat_period_ms=1000)
    for i, name in enumerate(("n1", "n2", "n3"), 1):
        n = node(name)
        n.status.address = f"192.0.2.{i}"
        cl.put(keys.node(C, name), n)
    cl.add_app("shop", web=2)
    for i, name in enumerate(("n1", "n2")):
        cl.put(keys.subnet(C, name, "shop", "default"),
               pb.SubnetAllocation(application="shop", network="default", node=name, subnet=f"10.128.0.{16 * i}/28"))
        put_web(cl, f"web-{i + 1}", name, "")
    return cl, hub


def put_web(cl: Cluster, name: str, on: str, address: str, *, message: str = "") -> None:
    c = pb.Container(cluster=C, application="shop", service="web", node=on,
                     desired_state=pb.DESIRED_STATE_RUNNING,
                     status=pb.ContainerStatus(state=pb.CONTAINER_STATE_RUNNING, message=message))
    c.meta.name = c.meta.id = name
    if address:
        c.status.addresses["default"] = address
    cl.put(keys.container(C, "shop", "web", name), c)


def wire(msg: QueuedMessage) -> agent_pb2.SessionMessage:
    """A queued message as its agent gets it: its encoding (header and shared map bytes), parsed."""
    return agent_pb2.SessionMessage.FromString(msg.encode())


def opened(hub: AssignmentHub, cluster: str, node: str, held_map_version: int = 0
           ) -> tuple[NodeSession, agent_pb2.SessionMessage]:
    """``hub.open``, its first message as the agent gets it."""
    s, complete = hub.open(cluster, node, held_map_version)
    return s, wire(complete)


def drain(s: NodeSession) -> list[agent_pb2.SessionMessage]:
    out: list[agent_pb2.SessionMessage] = []
    while True:
        try:
            msg = s.next_nowait()
        except asyncio.QueueEmpty:
            return out
        assert msg is not None
        out.append(wire(msg))


def maps(s: NodeSession) -> list[agent_pb2.NetworkMap]:
    return [m.network_map for m in drain(s) if m.network_map.version]


def web(m: agent_pb2.NetworkMap) -> list[str]:
    [net] = m.networks
    return next(list(n.addresses) for n in net.names if n.name == "web")


def test_the_complete_set_carries_the_nodes_map() -> None:
    _cl, hub = world()
    _, complete = opened(hub, C, "n1")
    m = complete.network_map
    assert m.version != 0 and m.cluster == C
    [net] = m.networks
    assert (net.application, net.network) == ("shop", "default")
    assert [(b.node, b.node_address) for b in net.blocks] == [("n1", "192.0.2.1"), ("n2", "192.0.2.2")]
    assert web(m) == []  # no container reported an address yet
    _, elsewhere = opened(hub, C, "n3")
    assert elsewhere.network_map.version != 0 and list(elsewhere.network_map.networks) == []


def test_a_reported_address_reaches_every_node_of_the_network_and_only_them() -> None:
    cl, hub = world()
    s1, _ = opened(hub, C, "n1")
    s2, _ = opened(hub, C, "n2")
    s3, _ = opened(hub, C, "n3")
    put_web(cl, "web-2", "n2", "10.128.0.18")
    [m1], [m2] = maps(s1), maps(s2)
    assert web(m1) == web(m2) == ["10.128.0.18"] and m1.version == m2.version
    assert maps(s3) == []
    # A status change that does not change what the names answer sends nothing.
    put_web(cl, "web-2", "n2", "10.128.0.18", message="still running")
    assert drain(s1) == [] and drain(s2) == []
    # Nor does a heartbeat (the node record rewritten with the same address).
    n2 = node("n2", heartbeat=5.0)
    n2.status.address = "192.0.2.2"
    cl.put(keys.node(C, "n2"), n2)
    assert drain(s1) == [] and drain(s2) == []
    # A node's new address is a new route for its peers.
    n2.status.address = "192.0.2.22"
    cl.put(keys.node(C, "n2"), n2)
    [m1] = maps(s1)
    assert [b.node_address for b in m1.networks[0].blocks] == ["192.0.2.1", "192.0.2.22"]
    # The chain of incremental messages holds: each one's base is the one before.
    before = s1.version
    put_web(cl, "web-1", "n1", "10.128.0.2")
    [msg] = drain(s1)
    assert (msg.type, msg.base_version) == (agent_pb2.SessionMessage.TYPE_INCREMENTAL, before)
    assert web(msg.network_map) == ["10.128.0.2", "10.128.0.18"]


def test_a_block_on_a_new_node_brings_the_network_there() -> None:
    cl, hub = world()
    s3, _ = opened(hub, C, "n3")
    s1, _ = opened(hub, C, "n1")
    cl.put(keys.subnet(C, "n3", "shop", "default"),
           pb.SubnetAllocation(application="shop", network="default", node="n3", subnet="10.128.0.32/28"))
    [m3], [m1] = maps(s3), maps(s1)
    assert [n.application for n in m3.networks] == ["shop"]
    assert [b.node for b in m1.networks[0].blocks] == ["n1", "n2", "n3"]
    cl.delete(keys.subnet(C, "n3", "shop", "default"))
    [m3] = maps(s3)
    assert list(m3.networks) == []


def test_maps_are_kept_only_for_clusters_with_sessions() -> None:
    cl, hub = world()
    put_web(cl, "web-1", "n1", "10.128.0.2")
    assert hub._netmaps == {}  # no session: nothing computed
    s1, _ = opened(hub, C, "n1")
    assert set(hub._netmaps) == {C}
    hub.close(s1)
    assert hub._netmaps == {}


async def test_after_a_relist_tables_come_from_the_new_cache() -> None:
    """The cache fell behind a compaction and listed again: a session that opens then gets
    the routing table and map of what is stored now, not of the cache before the re-list."""
    cl, hub = world()
    opened(hub, C, "n1")
    cl.etcd.hold = True  # the watch misses these writes; only the re-list sees them
    put_web(cl, "web-1", "n1", "10.128.0.2")
    svc = cl.service("shop", "web")
    svc.spec.routes.append(pb.Route(port=80, domain="shop.test"))
    cl.put(keys.service(C, "shop", "web"), svc)
    await cl.informer._list()
    hub._on_resync()  # as Informer._follow does after re-listing
    _, complete = opened(hub, C, "n1")
    assert [r.domain for r in complete.routing.routes] == ["shop.test"]
    assert web(complete.network_map) == ["10.128.0.2"]


async def test_with_a_map_delay_a_burst_of_changes_sends_each_node_one_map_after_it() -> None:
    """Issue 15: maps settle once per burst, not once per watch batch; assignments still go
    with their batch, and the map-only message keeps the session's chain."""
    cl, _ = world()
    hub = AssignmentHub(cl.informer, heartbeat_period_ms=1000, map_delay=0.05)
    s1, complete = opened(hub, C, "n1")
    assert web(complete.network_map) == []
    put_web(cl, "web-1", "n1", "10.128.0.2")
    put_web(cl, "web-2", "n2", "10.128.0.18")
    put_web(cl, "web-3", "n1", "")  # a new assignment for n1
    first = drain(s1)
    assert [m.network_map.version for m in first] == [0]  # the assignment at once, no map yet
    assert [a.container.meta.name for a in first[0].assignments] == ["web-3"]
    flushes: list[agent_pb2.SessionMessage] = []
    for _ in range(500):  # up to 5 s: the flush comes after map_delay, however loaded the box
        flushes += drain(s1)
        if flushes:
            break
        await asyncio.sleep(0.01)
    await asyncio.sleep(0.1)  # anything a second flush would have sent by now
    flushes += drain(s1)
    [flushed] = flushes
    assert not flushed.assignments
    assert web(flushed.network_map) == ["10.128.0.2", "10.128.0.18"]
    assert flushed.base_version == first[0].version and flushed.version >= flushed.base_version
    assert drain(s1) == []  # nothing changed since: nothing more


async def test_a_map_flush_over_many_nodes_lets_the_event_loop_run_between_nodes(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Issue 15: one synchronous flush of every node's map held the server's event loop for
    seconds at 500 nodes, so heartbeats were answered past the agents' deadline and sessions
    reopened. The flush now gives the loop back between slices of work; with a zero slice it
    yields after every node, so a heartbeat (here: this test) runs between two nodes' maps."""
    monkeypatch.setattr(hub_module, "FLUSH_SLICE", 0.0, raising=False)
    cl, _ = world()
    hub = AssignmentHub(cl.informer, heartbeat_period_ms=1000, map_delay=0.01)
    s1, _ = opened(hub, C, "n1")
    s2, _ = opened(hub, C, "n2")
    put_web(cl, "web-1", "n1", "10.128.0.2")  # changes both nodes' maps
    got: dict[str, list[agent_pb2.NetworkMap]] = {"n1": [], "n2": []}
    for _ in range(1000):  # up to 10 s for the flush to start, however loaded the box
        got["n1"] += maps(s1)
        got["n2"] += maps(s2)
        if got["n1"] or got["n2"]:
            break
        await asyncio.sleep(0.01)
    assert len([n for n, m in got.items() if m]) == 1, "both maps were sent without a pause between them"
    await asyncio.sleep(0.05)  # the flush goes on with the other node
    got["n1"] += maps(s1)
    got["n2"] += maps(s2)
    assert [web(m) for m in got["n1"]] == [web(m) for m in got["n2"]] == [["10.128.0.2"]]


async def test_a_map_not_yet_sent_is_replaced_by_the_newer_one_not_queued_behind_it() -> None:
    """Issue 15: a slow agent's queue grew by one whole-cluster map per flush. Maps are "latest
    wins": the queued, unsent map-only message takes the newer map (and version) instead."""
    cl, _ = world()
    hub = AssignmentHub(cl.informer, heartbeat_period_ms=1000, map_delay=0.01)
    s1, complete = opened(hub, C, "n1")

    async def flushed() -> None:
        for _ in range(1000):  # up to 10 s, however loaded the box
            await asyncio.sleep(0.01)
            if s1.open_map is not None and hub._flushing is None and hub._maps_pending is None:
                return
        raise AssertionError("no map was flushed")

    put_web(cl, "web-1", "n1", "10.128.0.2")
    await flushed()
    put_web(cl, "web-2", "n2", "10.128.0.18")
    for _ in range(1000):
        await asyncio.sleep(0.01)
        if s1.open_map is not None and web(s1.open_map.network_map) == ["10.128.0.2", "10.128.0.18"]:
            break
    [msg] = drain(s1)  # one message, with the latest map
    assert web(msg.network_map) == ["10.128.0.2", "10.128.0.18"]
    assert msg.base_version == complete.version and msg.version >= msg.base_version
    put_web(cl, "web-3", "n1", "")  # an assignment after it chains on the replaced message
    [after] = drain(s1)
    assert after.base_version == msg.version and [a.container.meta.name for a in after.assignments] == ["web-3"]


async def test_the_next_map_flush_waits_for_the_last_ones_bytes_at_the_paced_rate(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Issue 15: at 500 nodes a flush sent 580 MB of maps, and the agents' heartbeats waited
    behind them on their connections past the 5 s deadline (2,421 sessions ended with
    DEADLINE_EXCEEDED in 90 s while handled heartbeats took < 1 ms). The pace is made small
    here so that two nodes' maps already set the next flush seconds away."""
    cl, _ = world()
    hub = AssignmentHub(cl.informer, heartbeat_period_ms=1000, map_delay=0.01)
    s1, _ = opened(hub, C, "n1")
    s2, _ = opened(hub, C, "n2")
    assert hub.flush_delay() == 0.01
    monkeypatch.setattr(hub_module, "MAP_BYTES_PER_SECOND", 10, raising=False)
    put_web(cl, "web-1", "n1", "10.128.0.2")
    for _ in range(1000):  # up to 10 s for the first flush, however loaded the box
        await asyncio.sleep(0.01)
        if maps(s1) and hub._flushing is None:
            break
    sizes = hub.network_map(C, "n1").ByteSize() + hub.network_map(C, "n2").ByteSize()
    assert hub.flush_delay() >= (sizes - 20) / 10 > 5, "the next flush is not paced by the bytes sent"
    assert maps(s2), "n2 got its map in the same flush"
