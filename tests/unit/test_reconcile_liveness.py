"""The orchestrator judges nodes from their alive keys, not from heartbeats in their records
(issue 15; controlplane.dispatcher.liveness, controlplane.reconcile.node_pass).

Driven by hand as in test_reconcile_orchestrator.py: the test's clocks, no workers, FakeEtcd
feeding a real informer. The timings are the defaults: heartbeat period 5 s (liveness deadline
2 x 5 s + 1 s = 11 s), down grace 5 s.
"""

from __future__ import annotations

from typing import cast

import structlog

from ccs.v1 import resources_pb2 as pb
from controlplane.reconcile.orchestrator import Orchestrator
from controlplane.store import keys
from controlplane.store.etcd import Etcd
from tests.unit.reconcile_helpers import C, Cluster
from tests.unit.test_planner_helpers import node
from tests.unit.test_reconcile_orchestrator import THROTTLE, Clock, queued

GRACE = 5.0


def orchestrator(c: Cluster, clock: Clock) -> Orchestrator:
    o = Orchestrator(cast(Etcd, c.etcd), c.informer, workers=0, heartbeat_period=5.0, down_grace=GRACE,
                     monotonic=clock.monotonic, wall=clock.now)
    o.start()
    return o


def state_of(c: Cluster, node: str) -> int:
    return c.state.nodes[node].status.state


async def deployed(c: Cluster, clock: Clock) -> Orchestrator:
    c.add_app("shop", web=1)
    o = orchestrator(c, clock)
    clock.set(1.0)
    await o.reconcile(C)
    assert [x.node for x in c.running("shop", "web")] == ["n1"]
    queued(o)
    return o


async def test_a_node_whose_last_alive_key_goes_is_down_at_once_and_moved_after_the_grace() -> None:
    c, clock = Cluster(), Clock()
    o = await deployed(c, clock)
    clock.set(100.0)  # far past any start-up floor: only the key's going counts
    c.etcd.delete(keys.alive(C, "n1", "r1"))  # the replica stopped hearing n1 (11 s without a word)
    assert queued(o) == {C}, "losing its last key must wake the orchestrator (no timer does)"
    result = await o.reconcile(C)
    assert state_of(c, "n1") == pb.NODE_STATE_DOWN
    assert c.running("shop", "web"), "within the down grace its container still counts"
    assert result.requeue_after == GRACE
    clock.set(100.0 + GRACE)
    await o.reconcile(C)
    assert not [x for x in c.running("shop", "web") if x.node == "n1"], "rescheduled after the grace"


async def test_a_node_that_moves_to_another_replica_is_never_down() -> None:
    c, clock = Cluster(), Clock()
    o = await deployed(c, clock)
    clock.set(100.0)
    c.etcd.put(keys.alive(C, "n1", "r2"), b"r2")  # its agent reconnected to r2...
    c.etcd.delete(keys.alive(C, "n1", "r1"))  # ...then r1's lease expired (r1 died)
    assert queued(o) == set(), "a node that still has a key is no news"
    clock.set(100.0 + THROTTLE + 3 * GRACE)
    await o.reconcile(C)
    assert state_of(c, "n1") == pb.NODE_STATE_READY
    assert [x.node for x in c.running("shop", "web")] == ["n1"]


async def test_heartbeats_in_memory_leave_a_live_node_alone_however_old_its_record() -> None:
    c, clock = Cluster(), Clock()
    o = await deployed(c, clock)
    # n1's record was last written at 0 (its session's opening) and never since: heartbeats no
    # longer write it. With its alive key present, it is never judged.
    clock.set(3600.0)
    result = await o.reconcile(C)
    assert state_of(c, "n1") == pb.NODE_STATE_READY
    assert result.requeue_after is not None and result.requeue_after > GRACE


async def test_after_a_leader_starts_agents_get_the_deadline_and_the_floor_to_reconnect() -> None:
    """A control-plane outage: every alive key is gone when the new leader starts at 1000. No
    node is DOWN before 1000 + max(deadline 11 s, floor 10 s), and none is moved before the grace
    after that; an agent that reconnects in time (its key is back) is left alone."""
    c, clock = Cluster(), Clock()
    c.add_app("shop", web=1)
    o = orchestrator(c, clock)
    clock.set(1.0)
    await o.reconcile(C)
    await o.stop()
    c.etcd.delete(keys.alive(C, "n1", "r1"))  # the outage: the replica's lease expired
    clock.set(1000.0)
    o.start()  # a new term
    result = await o.reconcile(C)
    assert state_of(c, "n1") == pb.NODE_STATE_READY
    assert result.requeue_after == 11.0
    clock.set(1010.0)
    c.etcd.put(keys.alive(C, "n1", "r3"), b"r3")  # the agent found the restarted server
    clock.set(1000.0 + 11.0 + GRACE + THROTTLE)
    await o.reconcile(C)
    assert state_of(c, "n1") == pb.NODE_STATE_READY
    assert [x.node for x in c.running("shop", "web")] == ["n1"]


async def test_after_a_leader_starts_a_node_that_never_comes_back_is_down_after_the_deadline() -> None:
    c, clock = Cluster(), Clock()
    c.add_app("shop", web=1)
    o = orchestrator(c, clock)
    clock.set(1.0)
    await o.reconcile(C)
    await o.stop()
    c.etcd.delete(keys.alive(C, "n1", "r1"))
    clock.set(1000.0)
    o.start()
    await o.reconcile(C)
    clock.set(1011.0)
    result = await o.reconcile(C)
    assert state_of(c, "n1") == pb.NODE_STATE_DOWN
    assert result.requeue_after == GRACE


def many_nodes(c: Cluster, count: int) -> None:
    """n2..n{count} beside n1, each with a session on replica r1."""
    for i in range(2, count + 1):
        c.put(keys.node(C, f"n{i}"), node(f"n{i}", heartbeat=0.0))
        c.etcd.put(keys.alive(C, f"n{i}", "r1"), b"r1")


async def spread_over(count: int) -> tuple[Cluster, Clock, Orchestrator]:
    """``count`` nodes with sessions, app shop's ``web`` with one replica per node, reconciled once."""
    c, clock = Cluster(), Clock()
    many_nodes(c, count)
    c.add_app("shop", web=count)
    o = orchestrator(c, clock)
    clock.set(1.0)
    await o.reconcile(C)
    queued(o)
    return c, clock, o


async def test_when_most_nodes_go_unheard_at_once_they_are_down_but_nothing_moves_until_fewer_are() -> None:
    """More than half of 12 nodes unheard together: a control-plane or network fault is likelier
    than 7 failed hosts. They are marked DOWN, their containers stay; once only 5 of 12 are
    unheard, the normal timeline moves those 5 nodes' containers."""
    c, clock, o = await spread_over(12)
    assert len({x.node for x in c.running("shop", "web")}) == 12  # spread: one per node
    clock.set(100.0)
    lost = [f"n{i}" for i in range(1, 8)]
    for name in lost:
        c.etcd.delete(keys.alive(C, name, "r1"))
    await o.reconcile(C)
    clock.set(100.0 + 10 * GRACE)
    with structlog.testing.capture_logs() as logs:
        result = await o.reconcile(C)
    assert all(state_of(c, name) == pb.NODE_STATE_DOWN for name in lost)
    assert sorted(x.node for x in c.running("shop", "web")) == sorted(f"n{i}" for i in range(1, 13)), \
        "7 of 12 unheard: nothing moves"
    assert result.requeue_after is not None and result.requeue_after <= 2.0  # looks again soon
    [held] = [e for e in logs if e["event"] == "rescheduling held"]
    assert held["nodes"] == 7 and "7 of 12 nodes are unheard at once" in held["why"]

    for name in ("n6", "n7"):  # two come back: 5 of 12 unheard
        c.etcd.put(keys.alive(C, name, "r1"), b"r1")
    clock.set(100.0 + 10 * GRACE + THROTTLE)
    await o.reconcile(C)  # gives the 5 nodes' containers up...
    clock.set(100.0 + 10 * GRACE + 2 * THROTTLE)
    await o.reconcile(C)  # ...and places their replacements (the next pass, see node_pass)
    on = sorted(x.node for x in c.running("shop", "web"))
    assert not set(on) & {"n1", "n2", "n3", "n4", "n5"}, "the 5 still unheard are moved away"
    assert len(on) == 12


async def test_a_small_cluster_moves_containers_whatever_share_of_it_is_unheard() -> None:
    c, clock, o = await spread_over(3)
    clock.set(100.0)
    for name in ("n1", "n2"):
        c.etcd.delete(keys.alive(C, name, "r1"))
    await o.reconcile(C)
    clock.set(100.0 + GRACE)
    await o.reconcile(C)
    assert {x.node for x in c.running("shop", "web")} == {"n3"}, "2 of 3 lost: moved (below the minimum size)"
