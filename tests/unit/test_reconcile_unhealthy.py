"""Replacing UNHEALTHY containers through committed passes (``ClusterPass`` over ``FakeEtcd``):
one Event tells each replacement (in place of the generic ``Removing``/``Created`` of the same
step) and rides in the transaction of the write it describes, and an active release that
changes the service keeps the planner's hands off its unhealthy containers.

(The planning rule itself is table-tested in ``test_planner_unhealthy.py``.)
"""

from __future__ import annotations

from ccs.v1 import resources_pb2 as pb
from controlplane.store import keys
from controlplane.store.etcd import KV
from tests.unit.reconcile_helpers import C, Cluster
from tests.unit.test_planner_helpers import at, service


def deploy(c: Cluster, *, order: str = "") -> None:
    c.add_app("shop")
    svc = service("web", replicas=2, healthcheck=True)
    svc.application, svc.cluster = "shop", C
    svc.spec.update_config.order = order
    c.put(keys.service(C, "shop", "web"), svc)


def events_at(c: Cluster, revision: int) -> list[tuple[str, KV]]:
    """The stored events committed at ``revision`` (in one transaction with what it wrote)."""
    return [(k, kv) for k, kv in c.stored.items() if k.startswith(keys.events(C)) and kv.mod_revision == revision]


def report(c: Cluster, name: str, state: pb.ContainerState, when: float) -> None:
    """The agent's status report for container ``name`` of shop/web."""
    (record,) = [x for x in c.state.containers_of("shop", "web") if x.meta.name == name]
    updated = pb.Container()
    updated.CopyFrom(record)
    updated.status.state = state
    updated.status.updated_at.FromDatetime(at(when))
    c.put(keys.container(C, "shop", "web", name), updated)


async def two_running_one_unhealthy(c: Cluster) -> tuple[str, str]:
    await c.run(1.0)
    first, second = sorted(c.state.containers_of("shop", "web"), key=lambda x: x.slot)
    report(c, first.meta.name, pb.CONTAINER_STATE_UNHEALTHY, 2.0)
    report(c, second.meta.name, pb.CONTAINER_STATE_HEALTHY, 2.0)
    return first.meta.name, second.meta.name


async def test_the_replacement_event_is_written_in_the_transaction_that_retires_the_container() -> None:
    c = Cluster()
    deploy(c)
    sick, healthy = await two_running_one_unhealthy(c)
    await c.run(3.0)  # within the 5 s delay: nothing yet
    assert [e for e in c.events() if e.reason == "UnhealthyReplaced"] == []
    await c.run(8.0)
    retired = c.stored[keys.container(C, "shop", "web", sick)]
    (event,) = [e for e in c.events() if e.reason == "UnhealthyReplaced"]
    assert (event.kind, event.object, event.type) == ("container", f"shop/web/{sick}", "Warning")
    assert event.message.startswith(f"{sick} is replaced because it is unhealthy (since ")
    assert "; stop-first: " in event.message
    # Same transaction: etcd stamped the event and the retired record with one revision, and it
    # is the only event of that step (no "Removing" beside it).
    assert [c.events_by_key()[k] for k, kv in events_at(c, retired.mod_revision)] == [event]
    states = {x.meta.name: x.desired_state for x in c.state.containers_of("shop", "web")}
    assert states == {sick: pb.DESIRED_STATE_REMOVED, healthy: pb.DESIRED_STATE_RUNNING}


async def test_start_first_writes_the_event_with_the_new_container() -> None:
    c = Cluster()
    deploy(c, order="start-first")
    sick, _ = await two_running_one_unhealthy(c)
    await c.run(8.0)
    (event,) = [e for e in c.events() if e.reason == "UnhealthyReplaced"]
    (new,) = [x for x in c.state.containers_of("shop", "web") if x.meta.labels.get("ccs.replaces")]
    old = [x for x in c.state.containers_of("shop", "web") if x.meta.name == sick]
    assert old[0].desired_state == pb.DESIRED_STATE_RUNNING  # kept until the new one is ready
    assert new.meta.labels["ccs.replaces"] == old[0].meta.id and event.object == f"shop/web/{sick}"
    assert event.message.endswith(f"(new container {new.meta.name})")
    new_kv = c.stored[keys.container(C, "shop", "web", new.meta.name)]
    # The creation's one event (no "Created" beside it), in the creation's transaction.
    assert [c.events_by_key()[k] for k, _ in events_at(c, new_kv.mod_revision)] == [event]


async def test_an_active_release_of_the_service_owns_its_unhealthy_containers_until_it_ends() -> None:
    c = Cluster()
    deploy(c)
    sick, _ = await two_running_one_unhealthy(c)
    release = pb.Release(cluster=C, application="shop", number=1,
                         spec=pb.ReleaseSpec(strategy="rolling", services=["web"]),
                         status=pb.ReleaseStatus(phase=pb.RELEASE_PHASE_PAUSED))
    release.meta.name = keys.release_name(1)
    c.put(keys.release(C, "shop", 1), release)
    await c.run(10.0)
    assert "unhealthy, not replaced: slot 1 (left to the release)" in c.service("shop", "web").status.message
    assert [e for e in c.events() if e.reason == "UnhealthyReplaced"] == []
    assert {x.desired_state for x in c.state.containers_of("shop", "web")} == {pb.DESIRED_STATE_RUNNING}
    # The release ends: the same container is replaced on the next pass.
    release.status.phase = pb.RELEASE_PHASE_SUCCEEDED
    c.put(keys.release(C, "shop", 1), release)
    await c.run(11.0)
    assert [e.object for e in c.events() if e.reason == "UnhealthyReplaced"] == [f"shop/web/{sick}"]


async def test_a_release_of_another_service_does_not_hold_the_replacement() -> None:
    c = Cluster()
    deploy(c)
    sick, _ = await two_running_one_unhealthy(c)
    release = pb.Release(cluster=C, application="shop", number=1,
                         spec=pb.ReleaseSpec(strategy="rolling", services=["api"]),
                         status=pb.ReleaseStatus(phase=pb.RELEASE_PHASE_PAUSED))
    release.meta.name = keys.release_name(1)
    c.put(keys.release(C, "shop", 1), release)
    await c.run(10.0)
    assert [e.object for e in c.events() if e.reason == "UnhealthyReplaced"] == [f"shop/web/{sick}"]
