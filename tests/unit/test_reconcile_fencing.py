"""Fencing is one unit: a down node's raised ``fence_epoch`` (with its ``NodeFenced`` event) and
the containers stamped with it commit in one transaction or not at all.

The pass here writes more than one transaction holds (the fenced containers, their events and
their replacements), so without the binding the containers could commit in one chunk and the
node's epoch in another; a heartbeat that changes the node record in between must then make
the whole fencing fail, never leave containers fenced with an epoch the node does not have.
"""

from __future__ import annotations

from datetime import timedelta
from typing import cast

from ccs.v1 import resources_pb2 as pb
from controlplane.reconcile.cluster_pass import ClusterPass
from controlplane.reconcile.orchestrator import plan_pass
from controlplane.reconcile.writes import MAX_OPS
from controlplane.store import keys
from controlplane.store.etcd import Etcd
from tests.unit.reconcile_helpers import C, Cluster
from tests.unit.test_planner_helpers import at, node

REPLICAS = 120  # 60 on each node: giving n1's up (a write and an event each) needs > MAX_OPS
# What one fencing unit holds: the node's write and two events, then a write and an event each.
PER_UNIT = (MAX_OPS - 3) // 2


async def plan(c: Cluster, seconds: float) -> ClusterPass:
    """A full pass planned at ``seconds`` but not committed (as :meth:`Cluster.run` plans)."""
    dirty = set(c.state.services) | {k for k, v in c.state.by_service.items() if v}
    p, release_writes = await plan_pass(
        c.state, dirty, True, failures=c.failures, now=at(seconds), mono_now=seconds,
        heartbeat_period=timedelta(seconds=5), down_grace=timedelta(seconds=30))
    assert len(release_writes) == 0
    return p


async def down_n1() -> Cluster:
    """n1 and n2 run half the replicas each; n1 fell silent and is down, its grace about to end."""
    c = Cluster()
    c.put(keys.node(C, "n2"), node("n2", heartbeat=0.0))
    c.add_app("shop", web=REPLICAS)
    await c.run(1.0)
    c.put(keys.node(C, "n2"), node("n2", heartbeat=14.0))
    await c.run(16.0)
    assert c.state.nodes["n1"].status.state == pb.NODE_STATE_DOWN
    c.put(keys.node(C, "n2"), node("n2", heartbeat=44.0))
    return c


def on_n1(c: Cluster) -> list[pb.Container]:
    return [x for x in c.state.containers_of("shop", "web") if x.node == "n1"]


async def test_the_node_epoch_and_its_fenced_containers_commit_in_one_transaction() -> None:
    c = await down_n1()
    p = await plan(c, 46.0)
    await p.writes.commit(cast(Etcd, c.etcd))
    assert p.writes.conflicts == 0
    # As many as one transaction holds, all in the node's transaction, under its new epoch.
    fenced = [x for x in on_n1(c) if x.fence_epoch]
    assert len(fenced) == PER_UNIT
    assert c.state.nodes["n1"].fence_epoch == 1 and {x.fence_epoch for x in fenced} == {1}
    n1_rev = c.stored[keys.node(C, "n1")].mod_revision
    assert {c.stored[keys.container(C, "shop", "web", x.meta.name)].mod_revision for x in fenced} == {n1_rev}
    assert len(c.warnings("NodeFenced")) == 1
    # The rest go in the next pass, under the next epoch, again with the node.
    p = await plan(c, 47.0)
    await p.writes.commit(cast(Etcd, c.etcd))
    assert c.state.nodes["n1"].fence_epoch == 2
    assert sorted(x.fence_epoch for x in on_n1(c)) == [1] * PER_UNIT + [2] * (REPLICAS // 2 - PER_UNIT)
    assert len(c.warnings("NodeFenced")) == 2


async def test_a_heartbeat_that_changes_the_node_first_fails_the_whole_fencing_then_the_pass_replans() -> None:
    c = await down_n1()
    p = await plan(c, 46.0)
    # The node's record changes after the pass read it (its agent is back, or anything else).
    returned = node("n1", state=pb.NODE_STATE_DOWN, heartbeat=0.0)
    returned.status.message = "changed after the pass read it"
    c.put(keys.node(C, "n1"), returned)
    await p.writes.commit(cast(Etcd, c.etcd))
    assert p.writes.conflicts >= 1
    # Neither half of the unit: no container fenced, no epoch raised, no NodeFenced event.
    assert c.state.nodes["n1"].fence_epoch == 0
    assert [x.fence_epoch for x in on_n1(c) if x.fence_epoch] == []
    assert c.warnings("NodeFenced") == []
    # The next pass (on a cache that caught up) fences them under epoch 1, with the node.
    p = await plan(c, 47.0)
    await p.writes.commit(cast(Etcd, c.etcd))
    assert p.writes.conflicts == 0
    assert c.state.nodes["n1"].fence_epoch == 1
    assert [x.fence_epoch for x in on_n1(c) if x.fence_epoch] == [1] * PER_UNIT
    assert len(c.warnings("NodeFenced")) == 1


async def test_when_the_fencing_fails_no_replacement_lands_without_it() -> None:
    """Issue 15's hollow benchmark: 502 live containers for 500 replicas. The replacements of the
    containers a pass gives up committed in other transactions than the fencing unit; a
    heartbeat that failed the unit left the originals running beside their replacements."""
    c = await down_n1()
    p = await plan(c, 46.0)
    returned = node("n1", state=pb.NODE_STATE_DOWN, heartbeat=0.0)
    returned.status.message = "changed after the pass read it"
    c.put(keys.node(C, "n1"), returned)
    await p.writes.commit(cast(Etcd, c.etcd))
    assert p.writes.conflicts >= 1 and c.state.nodes["n1"].fence_epoch == 0
    live = [x for x in c.state.containers_of("shop", "web") if x.desired_state == pb.DESIRED_STATE_RUNNING]
    assert len(live) == REPLICAS
    # Once fenced (the next passes), the given-up containers are replaced, still never more.
    for t in (47.0, 48.0, 49.0, 50.0):
        await c.run(t)
        live = [x for x in c.state.containers_of("shop", "web") if x.desired_state == pb.DESIRED_STATE_RUNNING]
        assert len(live) <= REPLICAS
    assert len([x for x in live if x.node == "n2"]) == REPLICAS
