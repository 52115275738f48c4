"""The reconciler's events: one per decision about a container, with the planner's reason, in the
transaction that writes the decision, and none for what decides nothing.

Driven through committed passes over :class:`~tests.unit.reconcile_helpers.Cluster`; "the same
transaction" is read off :class:`~tests.unit.reconcile_helpers.FakeEtcd`, which commits one
transaction at one revision, so an event and the write it tells of share a ``mod_revision``.
"""

from __future__ import annotations

import pytest

from ccs.v1 import resources_pb2 as pb
from controlplane.planner import (
    ActionEvent,
    CreateContainer,
    DeleteContainer,
    MarkFinished,
    SetDesired,
    SetNodeState,
    event_of,
)
from controlplane.store import keys
from tests.unit.reconcile_helpers import C, Cluster
from tests.unit.test_planner_helpers import at, container, node

RUNNING, STOPPED, REMOVED = pb.DESIRED_STATE_RUNNING, pb.DESIRED_STATE_STOPPED, pb.DESIRED_STATE_REMOVED


def container_events(c: Cluster) -> list[tuple[str, str, str]]:
    """(reason, object, message) of every container event, oldest first."""
    return [(e.reason, e.object, e.message) for e in c.events() if e.kind == "container"]


def event_revision(c: Cluster, obj: str, reason: str) -> int:
    """The revision the one event of ``obj`` with ``reason`` was committed at."""
    [rev] = [c.stored[k].mod_revision for k, e in c.events_by_key().items() if e.object == obj and e.reason == reason]
    return rev


def report(c: Cluster, app: str, svc: str, state: pb.ContainerState, t: float, exit_code: int = 0) -> None:
    """Play the agent: every placed container of the service is observed in ``state``."""
    for x in c.state.containers_of(app, svc):
        if x.node:
            x.status.state, x.status.exit_code = state, exit_code
            x.status.updated_at.FromDatetime(at(t))
            c.put(keys.container(C, app, svc, x.meta.name), x)


# ---------------------------------------------------------------- the rule (pure)

@pytest.mark.parametrize(
    ("action", "before", "expect"),
    [
        (CreateContainer("web", 2, None, 1, 1, (), "slot 2 of 2 is missing"), None,
         ActionEvent("Created", "slot 2 of 2 is missing")),
        (SetDesired("a", REMOVED, "slot 3 is no longer wanted (replicas=2)"), container("a"),
         ActionEvent("Removing", "slot 3 is no longer wanted (replicas=2)")),
        (SetDesired("a", STOPPED, "application stopped"), container("a"),
         ActionEvent("Stopping", "application stopped")),
        (SetDesired("a", RUNNING, "application started"), container("a", desired=STOPPED),
         ActionEvent("Starting", "application started")),
        (SetDesired("a", REMOVED, "again"), container("a", desired=REMOVED), None),  # a no-op
        (MarkFinished("a", "failed", "crash loop"), container("a"), ActionEvent("Failed", "crash loop", True)),
        (MarkFinished("a", "completed", "completed: exited 0"), container("a"),
         ActionEvent("Completed", "completed: exited 0")),
        (DeleteContainer("a", "its node n9 no longer exists"), container("a"),
         ActionEvent("Deleted", "its node n9 no longer exists")),
        # The agent removed a retired container: bookkeeping, its Removing event was written then.
        (DeleteContainer("a", "removed"), container("a", desired=REMOVED, state=pb.CONTAINER_STATE_REMOVED), None),
        (SetNodeState("n1", pb.NODE_STATE_DOWN, "silent"), None, None),  # the node pass tells of it
    ],
    ids=["create", "retire", "stop", "start", "no-op", "failed", "completed", "node-gone", "cleanup", "node"],
)
def test_which_actions_are_told_and_how(action: object, before: pb.Container | None,
                                        expect: ActionEvent | None) -> None:
    assert event_of(action, before) == expect  # type: ignore[arg-type]


# ---------------------------------------------------------------- through committed passes

async def test_each_container_created_or_retired_gets_one_event_in_its_own_transaction() -> None:
    c = Cluster()
    c.add_app("shop", web=2)
    await c.run(1.0)
    names = sorted(x.meta.name for x in c.state.containers_of("shop", "web"))
    assert sorted(container_events(c)) == [
        ("Created", f"shop/web/{names[0]}", "slot 1 of 2 is missing"),
        ("Created", f"shop/web/{names[1]}", "slot 2 of 2 is missing"),
    ]
    for name in names:
        assert event_revision(c, f"shop/web/{name}", "Created") == \
            c.stored[keys.container(C, "shop", "web", name)].mod_revision

    c.put_service("shop", "web", 1)
    await c.run(2.0)
    [gone] = [x for x in c.state.containers_of("shop", "web") if x.desired_state == REMOVED]
    assert gone.slot == 2
    assert container_events(c)[2:] == [
        ("Removing", f"shop/web/{gone.meta.name}", "slot 2 is no longer wanted (replicas=1)")]
    assert event_revision(c, f"shop/web/{gone.meta.name}", "Removing") == \
        c.stored[keys.container(C, "shop", "web", gone.meta.name)].mod_revision


async def test_a_pass_that_changes_nothing_and_the_removal_bookkeeping_tell_nothing() -> None:
    c = Cluster()
    c.add_app("shop", web=2)
    await c.run(1.0)
    report(c, "shop", "web", pb.CONTAINER_STATE_RUNNING, 1.5)
    await c.run(2.0)  # placements and statuses: no decision
    await c.run(3.0)
    assert [r for r, _, _ in container_events(c)] == ["Created", "Created"]

    c.put_service("shop", "web", 1)
    await c.run(4.0)
    report(c, "shop", "web", pb.CONTAINER_STATE_REMOVED, 4.5)  # the agent removed the retired one
    await c.run(5.0)
    assert len(c.state.containers_of("shop", "web")) == 1  # its record was deleted...
    assert [r for r, _, _ in container_events(c)] == ["Created", "Created", "Removing"]  # ...untold


async def test_a_restart_tells_why_the_old_container_went_and_the_new_one_came() -> None:
    c = Cluster()
    c.add_app("shop", web=1)
    await c.run(1.0)
    [old] = c.state.containers_of("shop", "web")
    report(c, "shop", "web", pb.CONTAINER_STATE_FAILED, 2.0, exit_code=3)
    c.put(keys.node(C, "n1"), node("n1", heartbeat=59.0))  # alive: only the container died
    await c.run(60.0)  # past the restart delay
    [new] = [x for x in c.state.containers_of("shop", "web") if x.meta.id != old.meta.id]
    told = {r: (o, m) for r, o, m in container_events(c)[1:]}
    assert sorted(told) == ["Created", "Removing"]
    assert (told["Removing"][0], told["Created"][0]) == (f"shop/web/{old.meta.name}", f"shop/web/{new.meta.name}")
    removing, created = told["Removing"][1], told["Created"][1]
    assert removing == f"replaced: restart #1: previous container {old.meta.id} failed"
    assert created.startswith("restart #1: previous container") and old.meta.id in created


async def test_stop_start_and_a_node_going_down_are_told_with_their_reasons() -> None:
    c = Cluster()
    c.put(keys.node(C, "n2"), node("n2", heartbeat=0.0))
    c.add_app("shop", web=1)
    await c.run(1.0)
    [x] = c.state.containers_of("shop", "web")
    obj = f"shop/web/{x.meta.name}"
    app = c.state.apps["shop"]
    app.spec.desired_state = STOPPED
    c.put(keys.app(C, "shop"), app)
    await c.run(2.0)
    app.spec.desired_state = RUNNING
    c.put(keys.app(C, "shop"), app)
    await c.run(3.0)
    assert container_events(c)[1:] == [("Stopping", obj, "application stopped"),
                                       ("Starting", obj, "application started")]

    on = x.node
    other = "n2" if on == "n1" else "n1"
    c.put(keys.node(C, other), node(other, heartbeat=60.0))  # only x's node falls silent
    await c.run(61.0)  # down after 3 missed heartbeats of 5 s and the 30 s grace: moved at once
    [(reason, where, why)] = [e for e in container_events(c)[3:] if e[1] == obj]
    assert (reason, where) == ("Removing", obj) and why.startswith(f"node {on} down: ")
    assert event_revision(c, obj, "Removing") == c.stored[keys.container(C, "shop", "web", x.meta.name)].mod_revision
    [down] = c.warnings("NodeDown")
    assert event_revision(c, on, "NodeDown") == c.stored[keys.node(C, on)].mod_revision
    assert down.object == on
