"""The orchestrator's glue without etcd: dirty tracking, passes, conflicts, timers.

The orchestrator is driven by hand: its work queue has no workers, ``reconcile`` is awaited
directly, and both of its clocks are the test's (:class:`Clock`), so restart delays, the
containment backoff, the pass throttle and the periodic full pass happen when the test says.
Its etcd is :class:`~tests.unit.reconcile_helpers.FakeEtcd`, which checks guard revisions as
etcd does and feeds every commit back to the informer, whose listeners (the orchestrator's
dirty tracking) hear of it as they would from the watch.
"""

from __future__ import annotations

from datetime import datetime
from typing import cast

import pytest

from ccs.v1 import resources_pb2 as pb
from controlplane.reconcile.containment import backoff
from controlplane.reconcile.orchestrator import RESYNC_PERIOD, Orchestrator
from controlplane.store import keys
from controlplane.store.codec import decode
from controlplane.store.errors import StoreUnavailable
from controlplane.store.etcd import Etcd
from tests.unit.reconcile_helpers import BAD_CONSTRAINT, C, Cluster
from tests.unit.test_planner_helpers import at, node

THROTTLE = 3.0  # more than a pass takes: the orchestrator waits that long between passes


class Clock:
    """The orchestrator's two clocks, in seconds: ``mono`` (delays, backoff) and ``wall`` (planners)."""

    def __init__(self) -> None:
        self.mono = 0.0
        self.wall = 0.0

    def set(self, t: float) -> None:
        self.mono = self.wall = t

    def monotonic(self) -> float:
        return self.mono

    def now(self) -> datetime:
        return at(self.wall)


def orchestrator(c: Cluster, clock: Clock) -> Orchestrator:
    o = Orchestrator(cast(Etcd, c.etcd), c.informer, workers=0, monotonic=clock.monotonic, wall=clock.now)
    o.start()  # no workers: nothing runs until the test awaits reconcile()
    return o


def queued(o: Orchestrator) -> set[str]:
    """Take the keys the orchestrator queued since the last call."""
    out = set()
    while not o.queue._queue.empty():
        out.add(o.queue._queue.get_nowait())
    o.queue._queued.clear()
    return out


async def test_one_pass_plans_and_writes_and_a_second_pass_with_no_change_writes_nothing() -> None:
    c, clock = Cluster(), Clock()
    c.add_app("shop", web=2)
    o = orchestrator(c, clock)
    assert queued(o) == {C}
    clock.set(1.0)
    result = await o.reconcile(C)
    assert len(c.running("shop", "web")) == 2
    assert [x.status.state for x in c.running("shop", "web")] == [pb.CONTAINER_STATE_ASSIGNED] * 2
    assert c.service("shop", "web").status.desired == 2
    assert c.state.apps["shop"].status.phase == "Deploying"
    # The pass's own writes came back through the watch: the cluster is queued again...
    assert queued(o) == {C}
    # ...and the next timer is the periodic full pass: n1 has an alive key (a replica hears
    # it), so no node deadline is pending; its loss is a watch event, not a timer.
    assert result.requeue_after == RESYNC_PERIOD
    # The service's status is planned from the records as the pass found them ("0/2 running"):
    # the pass that follows the first one's own writes says "2 starting" once. Then nothing.
    clock.set(1.0 + THROTTLE)
    await o.reconcile(C)
    assert "2 starting" in c.service("shop", "web").status.message
    queued(o)
    revision = c.etcd.revision
    for t in (1.0 + 2 * THROTTLE, 1.0 + 3 * THROTTLE):
        clock.set(t)
        await o.reconcile(C)
        assert c.etcd.revision == revision, "a pass with nothing to change wrote something"
    assert queued(o) == set()
    # The periodic full pass (the safety net) plans every service, and also writes nothing.
    c.put(keys.node(C, "n1"), node("n1", heartbeat=RESYNC_PERIOD))
    revision = c.etcd.revision
    clock.set(1.0 + RESYNC_PERIOD)
    await o.reconcile(C)
    assert c.etcd.revision == revision


async def test_an_agents_report_dirties_its_service_and_the_next_pass_acts_on_it() -> None:
    c, clock = Cluster(), Clock()
    c.add_app("shop", web=1)
    o = orchestrator(c, clock)
    clock.set(1.0)
    await o.reconcile(C)
    queued(o)
    [ctr] = c.running("shop", "web")
    ctr.status.state = pb.CONTAINER_STATE_RUNNING
    c.put(keys.container(C, "shop", "web", ctr.meta.name), ctr)
    assert queued(o) == {C}
    clock.set(1.0 + THROTTLE)
    await o.reconcile(C)
    assert c.service("shop", "web").status.running == 1
    assert c.state.apps["shop"].status.phase == "Running"


async def test_a_pass_right_after_the_last_one_waits_as_long_as_that_one_took() -> None:
    c, clock = Cluster(), Clock()
    c.add_app("shop", web=1)
    o = orchestrator(c, clock)
    clock.set(1.0)
    await o.reconcile(C)
    c.put_service("shop", "web", 3)
    revision = c.etcd.revision
    result = await o.reconcile(C)  # the monotonic clock has not moved
    assert result.requeue_after is not None and 0 < result.requeue_after <= o.last_pass_seconds
    assert c.etcd.revision == revision  # nothing planned: the dirty service waits
    clock.set(1.0 + THROTTLE)
    await o.reconcile(C)
    assert len(c.running("shop", "web")) == 3


async def test_heartbeats_do_not_wake_the_orchestrator_but_node_changes_do() -> None:
    c, clock = Cluster(), Clock()
    c.add_app("shop", web=1)
    o = orchestrator(c, clock)
    clock.set(1.0)
    await o.reconcile(C)
    queued(o)
    c.put(keys.node(C, "n1"), node("n1", heartbeat=2.0))
    assert queued(o) == set()
    c.put(keys.node(C, "n2"), node("n2", heartbeat=2.0))
    assert queued(o) == {C}


async def test_router_counters_wake_the_orchestrator_only_for_a_running_canary() -> None:
    c, clock = Cluster(), Clock()
    c.add_app("shop", web=1)
    o = orchestrator(c, clock)
    queued(o)
    c.put(keys.router_stats(C, "n1"), pb.RouterStats(node="n1"))
    assert queued(o) == set()
    r = pb.Release(cluster=C, application="shop", number=1,
                   spec=pb.ReleaseSpec(strategy="canary", services=["web"]),
                   status=pb.ReleaseStatus(phase=pb.RELEASE_PHASE_PROGRESSING))
    r.meta.name = keys.release_name(1)
    c.put(keys.release(C, "shop", 1), r)
    assert queued(o) == {C}
    c.put(keys.router_stats(C, "n1"), pb.RouterStats(node="n1", routing_version=2))
    assert queued(o) == {C}
    r.status.phase = pb.RELEASE_PHASE_SUCCEEDED
    c.put(keys.release(C, "shop", 1), r)
    queued(o)
    c.put(keys.router_stats(C, "n1"), pb.RouterStats(node="n1", routing_version=3))
    assert queued(o) == set()


async def test_a_conflict_requeues_at_once_and_the_pass_lands_once_the_cache_caught_up() -> None:
    c, clock = Cluster(), Clock()
    c.add_app("shop", web=1)
    o = orchestrator(c, clock)
    clock.set(1.0)
    await o.reconcile(C)
    [ctr] = c.running("shop", "web")
    key = keys.container(C, "shop", "web", ctr.meta.name)
    c.put_service("shop", "web", 0)  # retires the container: a guarded write of its record
    c.etcd.hold = True
    reported = pb.Container()
    reported.CopyFrom(ctr)
    reported.status.state = pb.CONTAINER_STATE_RUNNING  # the agent's report, not yet in the cache
    c.put(key, reported)
    refused = c.etcd.refused
    clock.set(1.0 + THROTTLE)
    result = await o.reconcile(C)
    assert c.etcd.refused == refused + 1
    assert result.requeue_after == 0.05
    # Nothing was lost: the agent's report stands, and the container is not retired yet.
    stored = decode(c.etcd.kvs[key], pb.Container)
    assert stored.status.state == pb.CONTAINER_STATE_RUNNING
    assert stored.desired_state == pb.DESIRED_STATE_RUNNING
    assert c.state.containers[("shop", "web", ctr.meta.name)].desired_state == pb.DESIRED_STATE_RUNNING
    # Still behind: the same guard fails again; caught up: the retirement lands.
    await o.reconcile(C)
    assert c.etcd.refused == refused + 2
    c.etcd.hold = False
    c.etcd.deliver()
    await o.reconcile(C)
    [retired] = c.state.containers_of("shop", "web")
    assert retired.desired_state == pb.DESIRED_STATE_REMOVED
    assert retired.status.state == pb.CONTAINER_STATE_RUNNING  # planned from the agent's report


async def test_a_failed_commit_raises_for_the_queues_backoff_and_the_work_stays_dirty() -> None:
    c, clock = Cluster(), Clock()
    c.add_app("shop", web=1)
    o = orchestrator(c, clock)
    clock.set(1.0)
    c.etcd.unavailable = True
    with pytest.raises(StoreUnavailable):
        await o.reconcile(C)
    assert c.running("shop", "web") == []
    c.etcd.unavailable = False
    clock.set(1.5)  # no throttle after a failed pass, and no new change: the kept work is replanned
    await o.reconcile(C)
    assert len(c.running("shop", "web")) == 1


async def test_a_restart_delay_is_a_timer_that_plans_the_service_when_it_is_due() -> None:
    c, clock = Cluster(), Clock()
    c.add_app("shop")
    c.put_service("shop", "web", 1, delay_ms=8_000)
    o = orchestrator(c, clock)
    clock.set(1.0)
    await o.reconcile(C)
    [ctr] = c.running("shop", "web")
    ctr.status.state, ctr.status.exit_code = pb.CONTAINER_STATE_EXITED, 1
    ctr.status.updated_at.FromDatetime(at(2.0))
    c.put(keys.container(C, "shop", "web", ctr.meta.name), ctr)
    clock.set(4.0)
    result = await o.reconcile(C)
    assert result.requeue_after == 6.0  # died at 2, restarted 8 s later
    assert "restart pending in 6.0s" in c.service("shop", "web").status.message
    queued(o)
    # A pass with nothing new (the planners' clock unchanged, so the status is too) writes nothing
    # and leaves no service dirty: only the timer can plan the service again.
    clock.mono = 4.0 + THROTTLE
    revision = c.etcd.revision
    await o.reconcile(C)
    assert c.etcd.revision == revision and queued(o) == set()
    clock.set(10.0)
    await o.reconcile(C)
    [restarted] = c.running("shop", "web")
    assert restarted.meta.id != ctr.meta.id and restarted.meta.labels["ccs.restart.count"] == "1"


async def test_a_failing_service_makes_the_cluster_come_back_when_its_backoff_ends() -> None:
    c, clock = Cluster(), Clock()
    c.add_app("shop", web=1)
    c.put_service("shop", "bad", 1, BAD_CONSTRAINT)
    o = orchestrator(c, clock)
    clock.set(1.0)
    result = await o.reconcile(C)
    bad = ("service", "shop", "bad")
    assert o._failures[C].attempts(bad) == 1
    assert result.requeue_after == backoff(1)
    clock.set(1.0 + backoff(1))
    await o.reconcile(C)
    assert o._failures[C].attempts(bad) == 2
    assert len(c.running("shop", "web")) == 1


async def test_a_deleted_cluster_is_forgotten() -> None:
    c, clock = Cluster(), Clock()
    c.add_app("shop", web=1)
    o = orchestrator(c, clock)
    c.delete(keys.cluster(C))
    revision = c.etcd.revision
    result = await o.reconcile(C)
    assert result.requeue_after is None and c.etcd.revision == revision


async def test_a_pass_never_plans_from_a_cache_that_has_not_seen_its_own_last_commit() -> None:
    """Issue 15's 102,836 placements for 100,000 containers: the pass after one whose last chunk
    met a conflict (requeued at once) planned from a cache the watch had not yet brought up to
    the first chunks' creates, found those slots empty, and filled them again under new names,
    which no guard catches (a new container is a new key; the node's subnet block, the only
    other write, already existed)."""
    c, clock = Cluster(), Clock()
    c.add_app("shop", web=1)
    o = orchestrator(c, clock)
    clock.set(1.0)
    await o.reconcile(C)  # one container: the node now holds the application's subnet block
    c.put_service("shop", "web", 60)  # 59 creates and their events: more than one transaction
    c.etcd.hold = True  # from here the watch lags behind etcd
    c.put_service("shop", "web", 60)  # a write the cache has not seen: the service's status conflicts
    clock.set(1.0 + THROTTLE)
    result = await o.reconcile(C)
    assert result.requeue_after == 0.05  # the conflict: replan at once
    created = len(c.etcd.values(keys.containers(C, "shop", "web")))
    assert 1 < created < 60  # the chunks before the conflicting one landed
    clock.set(1.0 + 2 * THROTTLE)
    result = await o.reconcile(C)
    assert len(c.etcd.values(keys.containers(C, "shop", "web"))) == created, "slots filled twice"
    assert result.requeue_after == 0.05  # waits for the cache
    c.etcd.hold = False
    c.etcd.deliver()
    clock.set(1.0 + 3 * THROTTLE)
    await o.reconcile(C)
    assert len(c.etcd.values(keys.containers(C, "shop", "web"))) == 60
    assert len(c.running("shop", "web")) == 60


async def test_a_new_leadership_term_plans_only_once_the_cache_has_what_the_last_term_wrote() -> None:
    """Issue 15 after the first fix: 597 live containers for 500 around two leadership losses in
    a row. A term's last pass, cut short or on another replica, had committed containers that
    the cache of the next term's first pass had not seen yet."""
    c, clock = Cluster(), Clock()
    c.add_app("shop", web=1)
    old = orchestrator(c, clock)
    clock.set(1.0)
    await old.reconcile(C)
    c.put_service("shop", "web", 60)  # 59 creates and their events: more than one transaction
    c.etcd.hold = True  # the watch lags from here
    clock.set(1.0 + THROTTLE)
    await old.reconcile(C)  # the last pass of the old term
    assert len(c.etcd.values(keys.containers(C, "shop", "web"))) == 60
    await old.stop()
    new = orchestrator(c, clock)  # the next term (here another orchestrator: the state it keeps is not shared)
    revision = c.etcd.revision
    result = await new.reconcile(C)
    assert c.etcd.revision == revision, "planned from a cache behind the last term's commits"
    assert result.requeue_after == 0.05
    c.etcd.hold = False
    c.etcd.deliver()
    clock.set(1.0 + 2 * THROTTLE)
    await new.reconcile(C)
    assert len(c.etcd.values(keys.containers(C, "shop", "web"))) == 60


async def test_every_pass_is_told_with_its_outcome() -> None:
    """The server's metrics hear of each pass (ccs_reconcile_pass_seconds{outcome})."""
    c, clock = Cluster(), Clock()
    c.add_app("shop", web=1)
    o = orchestrator(c, clock)
    told: list[str] = []
    o.on_pass = lambda seconds, outcome: told.append(outcome) if seconds >= 0 else None
    clock.set(1.0)
    c.etcd.unavailable = True
    with pytest.raises(StoreUnavailable):
        await o.reconcile(C)
    c.etcd.unavailable = False
    clock.set(1.5)
    await o.reconcile(C)
    assert told == ["error", "done"]
