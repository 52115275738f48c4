"""The release part of a pass (``release_pass``) without etcd: plan, write in one transaction, time.

A release is set up as ``UpdateApplication`` leaves it (the service at its new generation, the
Release recording the previous spec and generation), then driven pass by pass while the test
plays the agent (reporting containers running, or removed once retired).
"""

from __future__ import annotations

from ccs.v1 import resources_pb2 as pb
from controlplane.reconcile.release_pass import current_routing, routing_applied
from controlplane.store import keys
from controlplane.store.codec import decode
from tests.unit.reconcile_helpers import C, Cluster
from tests.unit.test_planner_helpers import at

NAME = keys.release_name(1)


async def deployed(replicas: int = 2) -> Cluster:
    c = Cluster()
    c.add_app("shop", web=replicas)
    await c.run(1.0)
    agent(c, 1.5)
    await c.run(2.0)
    return c


def agent(c: Cluster, t: float) -> None:
    """What the agent reports: placed containers run, retired ones are removed."""
    for x in c.state.containers_of("shop", "web"):
        if not x.node:
            continue
        if x.desired_state == pb.DESIRED_STATE_RUNNING and x.status.state != pb.CONTAINER_STATE_RUNNING:
            x.status.state = pb.CONTAINER_STATE_RUNNING
        elif x.desired_state == pb.DESIRED_STATE_REMOVED and x.status.state != pb.CONTAINER_STATE_REMOVED:
            x.status.state = pb.CONTAINER_STATE_REMOVED
        else:
            continue
        x.status.updated_at.FromDatetime(at(t))
        c.put(keys.container(C, "shop", "web", x.meta.name), x)


def release(c: Cluster, strategy: str = "rolling", delay_ms: int = 0) -> pb.Release:
    """Change web's image as an update does, with its release."""
    old = c.service("shop", "web")
    new = pb.Service()
    new.CopyFrom(old)
    new.spec.image = "local/busybox:2"
    new.spec.update_config.delay_ms = delay_ms
    new.generation = new.last_generation = 2
    r = pb.Release(cluster=C, application="shop", number=1,
                   spec=pb.ReleaseSpec(strategy=strategy, services=["web"], from_revision=1, to_revision=2),
                   status=pb.ReleaseStatus(phase=pb.RELEASE_PHASE_PROGRESSING))
    r.spec.previous_specs["web"].CopyFrom(old.spec)
    r.spec.previous_generations["web"] = 1
    r.spec.previous_app_spec.CopyFrom(c.state.apps["shop"].spec)
    r.meta.name = NAME
    c.put(keys.service(C, "shop", "web"), new)
    c.put(keys.release(C, "shop", 1), r)
    return r


def stored_release(c: Cluster) -> pb.Release:
    return c.state.releases[("shop", NAME)]


def generations(c: Cluster) -> list[tuple[int, int]]:
    return sorted((x.spec_generation, x.desired_state) for x in c.state.containers_of("shop", "web"))


async def test_a_rolling_release_runs_to_success_writing_its_status_with_its_containers() -> None:
    c = await deployed()
    release(c)
    t = 3.0
    for _ in range(10):
        await c.run(t)
        if stored_release(c).status.phase == pb.RELEASE_PHASE_SUCCEEDED:
            break
        agent(c, t + 0.5)
        t += 3.0
    assert stored_release(c).status.phase == pb.RELEASE_PHASE_SUCCEEDED
    assert generations(c) == [(2, pb.DESIRED_STATE_RUNNING)] * 2
    phases = [(k, e.message) for k, e in c.events_by_key().items() if e.kind == "release" and e.reason == "Phase"]
    assert phases and "SUCCEEDED" in phases[-1][1]
    # Told in the release's own transaction, the one that wrote the phase.
    assert c.stored[phases[-1][0]].mod_revision == c.etcd.kvs[keys.release(C, "shop", 1)].mod_revision


async def test_the_release_status_and_the_containers_it_changes_are_one_transaction() -> None:
    c = await deployed()
    release(c)
    await c.run(3.0)  # stop-first: the first slot's old container is retired
    [retired] = [x for x in c.state.containers_of("shop", "web") if x.desired_state == pb.DESIRED_STATE_REMOVED]
    assert retired.HasField("stop_after")
    release_rev = c.etcd.kvs[keys.release(C, "shop", 1)].mod_revision
    assert c.etcd.kvs[keys.container(C, "shop", "web", retired.meta.name)].mod_revision == release_rev
    [why] = [k for k, e in c.events_by_key().items()
             if e.reason == "Removing" and e.object == f"shop/web/{retired.meta.name}"]
    assert c.stored[why].mod_revision == release_rev  # its event too
    assert "started web.1" in stored_release(c).status.message


async def test_a_second_pass_with_no_change_writes_nothing() -> None:
    c = await deployed()
    release(c)
    await c.run(3.0)
    revision = c.etcd.revision
    p = await c.run(3.0)
    assert c.etcd.revision == revision
    assert ("release", "shop", NAME) in p.succeeded


async def test_the_update_delay_is_a_timer_the_next_slot_waits_for() -> None:
    c = await deployed()
    release(c, delay_ms=20_000)
    await c.run(3.0)  # web.1: the old container is retired (stop-first)...
    agent(c, 3.5)
    await c.run(6.0)  # ...then its replacement is created...
    agent(c, 6.5)  # ...and runs from 6.5: the worker now idles for 20 s
    p = await c.run(9.0)
    assert "started web.1" in stored_release(c).status.message
    assert 6.5 + 20.0 - 9.0 in p.requeue  # come back when the delay ends
    await c.run(26.0)
    assert "started web.1" in stored_release(c).status.message
    await c.run(26.5)
    assert "started web.2" in stored_release(c).status.message


async def test_a_rollback_request_reverts_the_services_and_the_application_in_the_release_transaction() -> None:
    c = await deployed()
    release(c)
    await c.run(3.0)
    r = stored_release(c)
    r.status.requests.append("rollback")
    c.put(keys.release(C, "shop", 1), r)
    revision = c.state.apps["shop"].revision
    await c.run(4.0)
    service = c.service("shop", "web")
    assert service.spec.image == "local/busybox:1" and service.generation == 1 and service.last_generation == 2
    app = c.state.apps["shop"]
    assert app.revision == revision + 1
    snap = decode(c.etcd.kvs[keys.revision(C, "shop", app.revision)], pb.ApplicationRevision)
    assert "automatic rollback of revision 2" in snap.note
    release_rev = c.etcd.kvs[keys.release(C, "shop", 1)].mod_revision
    assert c.etcd.kvs[keys.service(C, "shop", "web")].mod_revision == release_rev
    assert stored_release(c).status.phase == pb.RELEASE_PHASE_ROLLING_BACK


async def test_routing_is_applied_when_every_ready_node_with_a_router_reports_the_table() -> None:
    c = await deployed()
    p = await c.run(3.0)
    table = current_routing(p)
    assert routing_applied(p, table)  # no router reports at all: nothing to wait for
    c.put(keys.router_stats(C, "n1"), pb.RouterStats(node="n1", routing_version=table.version + 1))
    p = await c.run(3.0)
    assert not routing_applied(p, table)
    c.put(keys.router_stats(C, "n1"), pb.RouterStats(node="n1", routing_version=table.version))
    p = await c.run(3.0)
    assert routing_applied(p, table)
    n1 = c.state.nodes["n1"]
    n1.status.state = pb.NODE_STATE_DOWN  # a node that is down does not hold a release up
    c.put(keys.node(C, "n1"), n1)
    c.put(keys.router_stats(C, "n1"), pb.RouterStats(node="n1", routing_version=1))
    p = await c.run(3.0)
    assert routing_applied(p, table)
