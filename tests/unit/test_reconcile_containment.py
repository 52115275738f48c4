"""The cluster pass contains failures to their object (no etcd: the informer's state by hand).

Each test drives :func:`plan_pass` the way the orchestrator does, over a ``ClusterState``
kept by the informer's own decoding code, and commits a pass through ``Writes.commit`` into
an in-memory etcd that checks guard revisions as etcd does and feeds the informer back, as
the watch would (:mod:`tests.unit.reconcile_helpers`). Time is passed in: the wall clock for
the planners, a monotonic clock for the backoff.
"""

from __future__ import annotations

from ccs.v1 import resources_pb2 as pb
from controlplane.reconcile.containment import ClusterFailures, backoff
from controlplane.store import keys
from tests.unit.reconcile_helpers import BAD_CONSTRAINT, GARBAGE, C, Cluster
from tests.unit.test_planner_helpers import service

# ---------------------------------------------------------------- services

async def test_a_service_whose_planning_raises_does_not_stop_another_services_placements() -> None:
    c = Cluster()
    c.add_app("shop", web=2)
    c.put_service("shop", "bad", 1, BAD_CONSTRAINT)
    p = await c.run(1.0)
    assert len(c.running("shop", "web")) == 2
    assert c.state.containers_of("shop", "bad") == []
    assert set(p.failed) == {("service", "shop", "bad")}
    message = c.service("shop", "bad").status.message
    assert message.startswith("cannot plan: placement.constraints[0]:") and "node.colour" in message
    [event] = c.warnings("PlanFailed")
    assert event.object == "shop/bad" and event.message == message
    # The application's status still counts the healthy service.
    assert c.state.apps["shop"].status.containers_desired >= 2


async def test_the_failure_is_reported_once_and_retried_only_after_its_own_backoff() -> None:
    c = Cluster()
    c.add_app("shop", web=1)
    c.put_service("shop", "bad", 1, BAD_CONSTRAINT)
    bad = ("service", "shop", "bad")
    await c.run(1.0)
    assert c.failures.attempts(bad) == 1 and c.failures.retry_at(bad) == 1.0 + backoff(1)
    # Passes inside the backoff (full ones: everything is dirty) do not try it again.
    for t in (1.2, 1.5, 1.9):
        p = await c.run(t)
        assert bad not in p.failed and bad not in p.succeeded
    assert c.failures.attempts(bad) == 1
    # After it: tried again, failed again, the delay doubled; the other service is unaffected.
    c.put_service("shop", "web", 3)
    p = await c.run(2.1)
    assert bad in p.failed and c.failures.attempts(bad) == 2
    assert c.failures.retry_at(bad) == 2.1 + backoff(2) and backoff(2) == 2 * backoff(1)
    assert len(c.running("shop", "web")) == 3
    # Several failing passes, one report: the status message is written once, one event.
    await c.run(2.1 + backoff(2) + 0.1)
    assert c.failures.attempts(bad) == 3
    assert len(c.warnings("PlanFailed")) == 1
    # A new leader has no memory, but the stored status says it was reported.
    c.failures = ClusterFailures()
    await c.run(10.0)
    assert len(c.warnings("PlanFailed")) == 1


async def test_a_service_recovers_when_fixed_and_its_failure_is_forgotten() -> None:
    c = Cluster()
    c.add_app("shop", web=1)
    c.put_service("shop", "bad", 2, BAD_CONSTRAINT)
    await c.run(1.0)
    # Fixed by the user: its own input changed, so it is planned at once, backoff or not.
    c.put_service("shop", "bad", 2)
    p = await c.run(1.1, dirty={("shop", "bad")})
    assert ("service", "shop", "bad") in p.succeeded
    assert len(c.running("shop", "bad")) == 2
    assert not c.service("shop", "bad").status.message.startswith("cannot plan")
    assert c.failures.next_retry(1.1) is None


async def test_a_dependency_heals_and_the_dependent_recovers_after_its_own_backoff() -> None:
    """An error in what a service reads but does not own: the dependent's input is unchanged,
    so it waits out its backoff, then recovers."""
    c = Cluster()
    c.add_app("shop")
    db = service("db", glob=True)
    db.application, db.cluster = "shop", C
    db.spec.placement.constraints.extend(BAD_CONSTRAINT)
    c.put(keys.service(C, "shop", "db"), db)
    web = service("web", replicas=1, depends_on=[("db", "service_started")])
    web.application, web.cluster = "shop", C
    c.put(keys.service(C, "shop", "web"), web)
    await c.run(1.0)
    assert c.service("shop", "web").status.message.startswith("cannot plan: depends_on db:")
    db.spec.placement.ClearField("constraints")
    c.put(keys.service(C, "shop", "db"), db)
    await c.run(1.2)  # db is fixed and runs; web still backs off
    assert len(c.running("shop", "db")) == 1
    assert c.failures.attempts(("service", "shop", "web")) == 1
    p = await c.run(1.0 + backoff(1))
    assert ("service", "shop", "web") in p.succeeded
    assert not c.service("shop", "web").status.message.startswith("cannot plan")


async def test_a_failed_service_leaves_no_half_written_work() -> None:
    """Planning fails after it already deleted a record (placing the replacement raises):
    the delete is undone with the rest of the service's writes."""
    c = Cluster()
    c.add_app("shop", web=3)
    await c.run(1.0)
    gone = c.running("shop", "web")[0]
    gone.desired_state = pb.DESIRED_STATE_REMOVED
    gone.status.state = pb.CONTAINER_STATE_REMOVED  # as its agent reports it: its record can go
    c.put(keys.container(C, "shop", "web", gone.meta.name), gone)
    records = {x.meta.id for x in c.state.containers_of("shop", "web")}
    c.put_service("shop", "web", 3, BAD_CONSTRAINT)  # the slot's replacement cannot be placed
    p = await c.run(1.1, dirty={("shop", "web")})
    assert ("service", "shop", "web") in p.failed
    assert {x.meta.id for x in c.state.containers_of("shop", "web")} == records
    c.put_service("shop", "web", 3)
    await c.run(1.2, dirty={("shop", "web")})
    assert gone.meta.id not in {x.meta.id for x in c.state.containers_of("shop", "web")}
    assert len(c.running("shop", "web")) == 3


# ---------------------------------------------------------------- records that do not decode

async def test_an_undecodable_service_is_held_and_reported_once_while_the_rest_converges() -> None:
    c = Cluster()
    c.add_app("shop", web=1, broken=1)
    await c.run(1.0)
    [kept] = c.running("shop", "broken")
    c.put_raw(keys.service(C, "shop", "broken"), GARBAGE)
    c.put_service("shop", "web", 3)
    for t in (2.0, 3.0, 4.0):
        await c.run(t)
    assert len(c.running("shop", "web")) == 3
    # Held, not treated as deleted: its container is neither retired nor touched.
    assert c.running("shop", "broken") == [kept]
    [event] = c.warnings("Undecodable")
    assert event.kind == "service" and event.object == "shop/broken"
    assert keys.service(C, "shop", "broken") in event.message
    # Rewritten: planned again (scaled to 2); broken again later: news, reported again.
    c.put_service("shop", "broken", 2)
    await c.run(5.0)
    assert len(c.running("shop", "broken")) == 2
    c.put_raw(keys.service(C, "shop", "broken"), GARBAGE + b"2")
    await c.run(6.0)
    assert len(c.warnings("Undecodable")) == 2


async def test_after_a_relist_an_undecodable_service_is_held_not_taken_for_deleted() -> None:
    """A new leader has no earlier good copy: the service is simply not in its cache. Planned as
    absent, its containers would be retired; held, they keep running."""
    c = Cluster()
    c.add_app("shop", web=1, broken=2)
    await c.run(1.0)
    kept = {x.meta.id for x in c.running("shop", "broken")}
    c.put_raw(keys.service(C, "shop", "broken"), GARBAGE)
    await c.relist()
    assert ("shop", "broken") not in c.state.services
    c.put_service("shop", "web", 2)
    await c.run(2.0)
    assert len(c.running("shop", "web")) == 2
    assert {x.meta.id for x in c.running("shop", "broken")} == kept
    assert len(c.warnings("Undecodable")) == 1


async def test_an_undecodable_container_holds_its_service_and_is_never_written() -> None:
    c = Cluster()
    c.add_app("shop", web=2, other=1)
    await c.run(1.0)
    victim = c.running("shop", "web")[0]
    c.put_raw(keys.container(C, "shop", "web", victim.meta.name), GARBAGE)
    c.put_service("shop", "web", 1)  # would retire one; the service is held instead
    c.put_service("shop", "other", 2)
    await c.run(2.0)  # commit() asserts no write is guarded by a stale revision
    assert len(c.running("shop", "other")) == 2
    assert len(c.running("shop", "web")) == 2
    c.delete(keys.container(C, "shop", "web", victim.meta.name))
    await c.run(3.0)
    assert len(c.running("shop", "web")) == 1


async def test_an_undecodable_application_is_held_and_its_services_are_not_retired() -> None:
    c = Cluster()
    c.add_app("shop", web=1)
    c.add_app("blog", web=1)
    await c.run(1.0)
    c.put_raw(keys.app(C, "shop"), GARBAGE)
    c.put_service("blog", "web", 2)
    await c.run(2.0)
    assert len(c.running("blog", "web")) == 2
    assert len(c.running("shop", "web")) == 1
    await c.relist()  # now without the last good copy: an absent application would mean "removed"
    await c.run(3.0)
    assert len(c.running("shop", "web")) == 1
    # Reported once per leader (a new leader's memory is empty): two events, one per leader.
    assert [(e.kind, e.object) for e in c.warnings("Undecodable")] == [("application", "shop")] * 2


# ---------------------------------------------------------------- releases

def release(app: str, strategy: str) -> pb.Release:
    r = pb.Release(cluster=C, application=app, number=1,
                   spec=pb.ReleaseSpec(strategy=strategy, services=["web"]),
                   status=pb.ReleaseStatus(phase=pb.RELEASE_PHASE_PROGRESSING))
    r.meta.name = keys.release_name(1)
    return r


async def test_a_release_that_raises_is_contained_reported_once_and_backs_off() -> None:
    c = Cluster()
    c.add_app("shop", web=1)
    c.add_app("blog", web=1)
    c.put(keys.release(C, "shop", 1), release("shop", "sideways"))
    obj = ("release", "shop", keys.release_name(1))
    p = await c.run(1.0)
    assert obj in p.failed
    assert len(c.running("blog", "web")) == 1 and len(c.running("shop", "web")) == 1
    stored = c.state.releases[("shop", keys.release_name(1))]
    assert stored.status.message.startswith("cannot plan: spec.strategy: 'sideways'")
    assert stored.status.phase == pb.RELEASE_PHASE_PROGRESSING
    c.put_service("blog", "web", 2)
    for t in (1.5, 1.9):
        p = await c.run(t)
        assert obj not in p.failed and obj not in p.succeeded
    assert len(c.running("blog", "web")) == 2
    await c.run(2.5)
    assert c.failures.attempts(obj) == 2
    assert len(c.warnings("PlanFailed")) == 1
    # Fixed: planned at once.
    fixed = c.state.releases[("shop", keys.release_name(1))]
    fixed.spec.strategy = "rolling"
    c.put(keys.release(C, "shop", 1), fixed)
    p = await c.run(2.6)
    assert obj in p.succeeded and c.failures.attempts(obj) == 0


async def test_a_failing_release_that_is_superseded_is_forgotten_and_nothing_spins() -> None:
    c = Cluster()
    c.add_app("shop", web=1)
    c.put(keys.release(C, "shop", 1), release("shop", "sideways"))
    obj = ("release", "shop", keys.release_name(1))
    await c.run(1.0)
    assert c.failures.attempts(obj) == 1 and c.failures.next_retry(1.0) == backoff(1)
    # Once due, the cluster is not requeued for it again and again: the next pass retries it.
    assert c.failures.next_retry(1.0 + backoff(1)) is None
    newer = release("shop", "rolling")
    newer.number, newer.meta.name = 2, keys.release_name(2)
    c.put(keys.release(C, "shop", 2), newer)
    await c.run(1.1)
    assert c.failures.attempts(obj) == 0 and c.failures.next_retry(1.1) is None
