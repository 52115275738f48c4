"""``ClusterPass`` without etcd: nodes, placement, unplaced replicas, removal, in committed passes.

(Failure containment in the same pass is tested in ``test_reconcile_containment.py``.)
"""

from __future__ import annotations

from ccs.labels import KEEP_VOLUMES
from ccs.v1 import resources_pb2 as pb
from controlplane.store import keys
from tests.unit.reconcile_helpers import C, Cluster
from tests.unit.test_planner_helpers import node, service


def nodes_of(c: Cluster, app: str, svc: str) -> list[str]:
    return sorted(x.node for x in c.running(app, svc))


async def test_a_silent_node_goes_down_and_after_the_grace_its_containers_move() -> None:
    c = Cluster()
    c.put(keys.node(C, "n2"), node("n2", heartbeat=0.0))
    c.add_app("shop", web=2)
    await c.run(1.0)
    assert nodes_of(c, "shop", "web") == ["n1", "n2"]
    c.put(keys.node(C, "n2"), node("n2", heartbeat=14.0))  # n1 falls silent after 0
    p = await c.run(16.0)  # 3 missed heartbeats of 5 s
    assert c.state.nodes["n1"].status.state == pb.NODE_STATE_DOWN
    assert [e.object for e in c.warnings("NodeDown")] == ["n1"]
    assert nodes_of(c, "shop", "web") == ["n1", "n2"]  # a short partition must not double a service
    assert p.requeue and min(p.requeue) > 0
    c.put(keys.node(C, "n2"), node("n2", heartbeat=44.0))
    await c.run(46.0)  # down_grace (30 s) after it went down: given up (fenced)...
    assert nodes_of(c, "shop", "web") == ["n2"]
    await c.run(46.5)  # ...and replaced on n2 by the next pass, once the fencing is committed
    assert nodes_of(c, "shop", "web") == ["n2", "n2"]
    [moved] = [x for x in c.state.containers_of("shop", "web") if x.node == "n1"]
    assert moved.desired_state == pb.DESIRED_STATE_REMOVED  # kept for the agent, if it comes back
    # Fenced: the node's epoch went up once, and the container given up carries it (its agent
    # stops it before starting anything when it returns); the one on n2 is not fenced.
    assert c.state.nodes["n1"].fence_epoch == 1 and moved.fence_epoch == 1
    assert c.state.nodes["n2"].fence_epoch == 0
    assert all(x.fence_epoch == 0 for x in c.state.containers_of("shop", "web") if x.node == "n2")
    [fenced] = c.warnings("NodeFenced")
    assert (fenced.object, fenced.message.split(":")[0]) == ("n1", "fence epoch 1")
    await c.run(47.0)  # nothing new to give up: the epoch stays
    assert c.state.nodes["n1"].fence_epoch == 1 and len(c.warnings("NodeFenced")) == 1


async def test_replicas_that_fit_nowhere_stay_pending_with_the_reason_in_the_status() -> None:
    c = Cluster()
    c.add_app("shop")
    c.put_service("shop", "web", 2, ("node.hostname==elsewhere",))
    await c.run(1.0)
    pending = c.state.containers_of("shop", "web")
    assert [x.status.state for x in pending] == [pb.CONTAINER_STATE_PENDING] * 2
    assert all(not x.node and x.status.message for x in pending)
    assert "2 unplaced:" in c.service("shop", "web").status.message
    # A node that matches arrives: the same records are placed, none is added.
    elsewhere = node("elsewhere", heartbeat=1.0)
    elsewhere.status.hostname = "elsewhere"
    c.put(keys.node(C, "elsewhere"), elsewhere)
    await c.run(2.0)
    placed = c.state.containers_of("shop", "web")
    assert {x.meta.id for x in placed} == {x.meta.id for x in pending}
    assert [x.node for x in placed] == ["elsewhere"] * 2
    assert [x.status.state for x in placed] == [pb.CONTAINER_STATE_ASSIGNED] * 2


async def test_a_global_service_runs_one_container_per_eligible_node() -> None:
    c = Cluster()
    c.put(keys.node(C, "n2"), node("n2", heartbeat=0.0))
    c.add_app("shop")
    s = service("agent", glob=True)
    s.application, s.cluster = "shop", C
    c.put(keys.service(C, "shop", "agent"), s)
    await c.run(1.0)
    assert nodes_of(c, "shop", "agent") == ["n1", "n2"]
    c.put(keys.node(C, "n3"), node("n3", heartbeat=1.0))
    await c.run(2.0)
    assert nodes_of(c, "shop", "agent") == ["n1", "n2", "n3"]


async def test_a_removed_application_retires_its_containers_then_is_deleted_with_what_it_owns() -> None:
    c = Cluster()
    c.add_app("shop", web=1)
    await c.run(1.0)
    app = c.state.apps["shop"]
    app.spec.desired_state = pb.DESIRED_STATE_REMOVED
    app.meta.labels[KEEP_VOLUMES] = "true"
    c.put(keys.app(C, "shop"), app)
    await c.run(2.0)
    [x] = c.state.containers_of("shop", "web")
    assert x.desired_state == pb.DESIRED_STATE_REMOVED and x.meta.labels[KEEP_VOLUMES] == "true"
    assert "shop" in c.state.apps  # not before its containers are gone
    x.status.state = pb.CONTAINER_STATE_REMOVED
    c.put(keys.container(C, "shop", "web", x.meta.name), x)
    for t in (3.0, 4.0, 5.0):
        await c.run(t)
    assert "shop" not in c.state.apps and not c.state.services and not c.state.containers
    assert [e.object for e in c.events() if e.reason == "Deleted"] == ["shop"]


async def test_a_pass_that_changes_nothing_writes_nothing() -> None:
    c = Cluster()
    c.put(keys.node(C, "n2"), node("n2", heartbeat=0.0))
    c.add_app("shop", web=3)
    c.add_app("blog", web=1)
    await c.run(1.0)
    await c.run(1.0)  # the statuses catch up with the pass's own placements
    revision = c.etcd.revision
    p = await c.run(2.0)
    assert c.etcd.revision == revision and len(p.writes) == 0


async def test_a_removed_application_waits_for_the_containers_of_a_service_that_left_its_template() -> None:
    """The application's deletion looks at its containers through the service index (issue 15:
    no scan of the cluster's containers per application), including a service whose record is
    already gone."""
    c = Cluster()
    c.add_app("shop", web=1)
    await c.run(1.0)
    c.delete(keys.service(C, "shop", "web"))  # left the template; its container still runs
    app = c.state.apps["shop"]
    app.spec.desired_state = pb.DESIRED_STATE_REMOVED
    c.put(keys.app(C, "shop"), app)
    await c.run(2.0)
    await c.run(3.0)
    [x] = c.state.containers_of("shop", "web")
    assert x.desired_state == pb.DESIRED_STATE_REMOVED
    assert "shop" in c.state.apps  # not before that container is gone
    x.status.state = pb.CONTAINER_STATE_REMOVED
    c.put(keys.container(C, "shop", "web", x.meta.name), x)
    for t in (4.0, 5.0, 6.0):
        await c.run(t)
    assert "shop" not in c.state.apps and not c.state.containers
