"""Table tests for replacing UNHEALTHY containers (``controlplane.planner.unhealthy``): the off
switch, the restart policy, the backoff, the parallelism cap, the order, and releases."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime

import pytest

from ccs.v1 import resources_pb2 as pb
from controlplane.planner import (
    ActionEvent,
    CreateContainer,
    PlanError,
    SetDesired,
    apply_actions,
    event_of,
    plan_service,
)

from .test_planner_helpers import Ids, app, at, container, nodes, service, shorts

UNHEALTHY = pb.CONTAINER_STATE_UNHEALTHY
HEALTHY = pb.CONTAINER_STATE_HEALTHY
STARTING = pb.CONTAINER_STATE_STARTING
STOPPED = pb.CONTAINER_STATE_STOPPED
REMOVED = pb.CONTAINER_STATE_REMOVED
D_REMOVED = pb.DESIRED_STATE_REMOVED


def web(*, replace: bool | None = None, order: str = "", parallelism: int = 0, replicas: int = 1,
        glob: bool = False, **kw: object) -> pb.Service:
    """A service with a health check; ``replace`` is x-ccs.replace_unhealthy (None: unset)."""
    svc = service(replicas=replicas, glob=glob, healthcheck=True, **kw)  # type: ignore[arg-type]
    if replace is not None:
        svc.spec.replace_unhealthy = replace
    svc.spec.update_config.order = order
    svc.spec.update_config.parallelism = parallelism
    return svc


def sick(cid: str, slot: int = 1, node: str = "n1", *, since: float = 0.0, started: float | None = None,
         labels: Mapping[str, str] | None = None, state: pb.ContainerState = UNHEALTHY,
         **kw: object) -> pb.Container:
    """A container that turned UNHEALTHY at ``since`` (the agent's status.updated_at); a retired
    one may have a later ``state``."""
    c = container(cid, slot, node, state=state, changed=since, healthcheck=True, labels=labels,
                  **kw)  # type: ignore[arg-type]
    if started is not None:
        c.status.started_at.FromDatetime(at(started))
    return c


def well(cid: str, slot: int, node: str = "n1", **kw: object) -> pb.Container:
    return container(cid, slot, node, state=HEALTHY, healthcheck=True, **kw)  # type: ignore[arg-type]


def replacement_of(old: str, cid: str, slot: int = 1, state: pb.ContainerState = STARTING,
                   **kw: object) -> pb.Container:
    """A container created (start-first, or after a stop-first stop) to replace ``old``."""
    return container(cid, slot, "n2", state=state, healthcheck=True, created=-1,
                     labels={"ccs.replaces": old, "ccs.unhealthy.streak": "1"}, **kw)  # type: ignore[arg-type]


@dataclass
class Case:
    name: str
    svc: pb.Service
    containers: Sequence[pb.Container]
    expect: list[str]
    now: datetime = field(default_factory=lambda: at(5))
    message: str = ""
    requeue_after: float | None = None
    releasing: bool = False
    global_nodes: Sequence[str] | None = None


CASES = [
    # ---------------------------------------------------------------- on by default, and the switch
    Case("default: stop-first, the unhealthy container is retired after the 5s delay",
         web(), [sick("a")], ["remove a"], message="replacing 1 unhealthy container(s)"),
    Case("replace_unhealthy: true is the default spelled out", web(replace=True), [sick("a")], ["remove a"]),
    Case("replace_unhealthy: false turns it off, and the status says so",
         web(replace=False), [sick("a")], [], now=at(600),
         message="1/1 running; unhealthy, not replaced: slot 1 (x-ccs.replace_unhealthy: false)"),
    Case("a healthy service does nothing", web(replicas=2), [well("a", 1), well("b", 2)], [],
         message="2/2 running"),
    # ---------------------------------------------------------------- backoff
    Case("the delay after turning unhealthy has not passed: a requeue, nothing else",
         web(), [sick("a", since=2.0)], [], now=at(4), requeue_after=3.0,
         message="unhealthy: replacement in 3.0s (backoff)"),
    Case("restart_policy.delay is the base of the backoff",
         web(delay_ms=30_000), [sick("a")], [], now=at(10), requeue_after=20.0),
    Case("each unhealthy container replaced in a row doubles the delay (2 before: 4 x 5s)",
         web(), [sick("a", labels={"ccs.unhealthy.streak": "2"})], [], now=at(15), requeue_after=5.0),
    Case("... and once it has passed, the replacement comes",
         web(), [sick("a", labels={"ccs.unhealthy.streak": "2"})], ["remove a"], now=at(20)),
    Case("the backoff stops growing at 5 minutes",
         web(), [sick("a", labels={"ccs.unhealthy.streak": "9"})], [], now=at(200), requeue_after=100.0),
    Case("a container that ran 10 minutes before turning unhealthy starts the streak over",
         web(), [sick("a", since=700, started=60, labels={"ccs.unhealthy.streak": "6"})], ["remove a"],
         now=at(705)),
    # ---------------------------------------------------------------- the restart policy
    Case("restart: no: not replaced, left running, and the status says why",
         web(restart="no"), [sick("a")], [], now=at(600),
         message="slot 1: unhealthy, not replaced (restart_policy.condition=none)"),
    Case("condition: on-failure counts UNHEALTHY as a failure", web(condition="on-failure"), [sick("a")],
         ["remove a"]),
    Case("max_attempts counts unhealthy replacements with crashes, within the window",
         web(max_attempts=2, window_ms=60_000),
         [sick("a", since=30, labels={"ccs.restart.count": "2",
                                      "ccs.restart.failures": f"{at(0).isoformat()},{at(10).isoformat()}"})],
         [], now=at(600),
         message="slot 1: unhealthy, not replaced: crash loop: died 3 times within 1m, last is unhealthy "
                 "(restart_policy.max_attempts=2 reached)"),
    # ---------------------------------------------------------------- parallelism
    Case("never more at once than update_config.parallelism (0 means 1)",
         web(replicas=3), [sick("a", 1), sick("b", 2), sick("c", 3)], ["remove a"],
         message="unhealthy, waiting for update_config.parallelism=1: slot 2, slot 3"),
    Case("parallelism 2: two at once, in slot order",
         web(replicas=3, parallelism=2), [sick("a", 1), sick("b", 2), sick("c", 3)], ["remove a", "remove b"]),
    Case("a replacement on its way counts against the cap",
         web(replicas=3, parallelism=2), [replacement_of("x", "r", 1), sick("b", 2), sick("c", 3)],
         ["remove b"], message="unhealthy, waiting for update_config.parallelism=2: slot 3"),
    Case("... as does a stop-first one still stopping",
         web(replicas=2),
         [sick("x", 1, desired=D_REMOVED, labels={"ccs.unhealthy.since": at(0).isoformat()}), sick("b", 2)],
         [], message="replacing 1 unhealthy container(s); "
                     "unhealthy, waiting for update_config.parallelism=1: slot 2; "
                     "1 slot(s) wait for the old container to stop"),
    Case("a ready replacement no longer counts", web(replicas=2),
         [replacement_of("x", "r", 1, state=HEALTHY), sick("b", 2)], ["remove b"]),
    # ---------------------------------------------------------------- releases
    Case("during a release that changes the service, UNHEALTHY is the release's business",
         web(), [sick("a")], [], now=at(600), releasing=True,
         message="unhealthy, not replaced: slot 1 (left to the release)"),
    # ---------------------------------------------------------------- start-first
    Case("start-first: the replacement is created beside the unhealthy one",
         web(order="start-first"), [sick("a")], ["create 1"]),
    Case("start-first: the unhealthy one stays while its replacement starts",
         web(order="start-first"), [sick("a"), replacement_of("a", "r")], [],
         message="replacing 1 unhealthy container(s)"),
    Case("start-first: the unhealthy one goes once its replacement is ready",
         web(order="start-first"), [sick("a"), replacement_of("a", "r", state=HEALTHY)], ["remove a"]),
    Case("start-first: a replacement that turns unhealthy takes the slot; the old one goes, it backs off",
         web(order="start-first"), [sick("a"), replacement_of("a", "r", state=UNHEALTHY)], ["remove a"],
         requeue_after=5.0),
    Case("start-first: a replacement that dies takes the slot too: the restart policy restarts it",
         web(order="start-first"),
         [sick("a"), replacement_of("a", "r", state=pb.CONTAINER_STATE_EXITED, exit_code=1)],
         ["remove a", "remove r", "create 1"]),
    Case("start-first: the unhealthy one recovered first, so the replacement goes",
         web(order="start-first"), [well("a", 1), replacement_of("a", "r")], ["remove r"]),
    # ---------------------------------------------------------------- stop-first, continued
    Case("stop-first: the replacement is created once the unhealthy one has stopped",
         web(), [sick("a", desired=D_REMOVED, labels={"ccs.unhealthy.since": at(0).isoformat()}, state=STOPPED)],
         ["create 1"]),
    Case("stop-first: also when the agent reports it removed at once",
         web(), [sick("a", desired=D_REMOVED, labels={"ccs.unhealthy.since": at(0).isoformat()}, state=REMOVED)],
         ["delete a", "create 1"]),
    # ---------------------------------------------------------------- global
    Case("global: the replacement is pinned to the same node", web(glob=True, order="start-first"),
         [sick("a", 0, "n2")], ["create n2"], global_nodes=["n2"]),
]


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_unhealthy_replacement(case: Case) -> None:
    p = plan_service(app(), case.svc, case.containers, nodes("n1", "n2"), {}, case.now,
                     global_nodes=case.global_nodes, releasing=case.releasing)
    assert shorts(p.actions) == case.expect
    assert case.message in p.status.message
    assert p.requeue_after == case.requeue_after


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_planning_again_after_the_plan_does_nothing(case: Case) -> None:
    p = plan_service(app(), case.svc, case.containers, nodes("n1", "n2"), {}, case.now,
                     global_nodes=case.global_nodes, releasing=case.releasing)
    after = apply_actions(case.containers, p.actions, case.svc, case.now, Ids())
    again = plan_service(app(), case.svc, after, nodes("n1", "n2"), {}, case.now,
                         global_nodes=case.global_nodes, releasing=case.releasing)
    assert shorts(again.actions) == []


def test_stop_first_carries_the_slot_history_to_the_replacement_and_tells_one_event() -> None:
    svc = web()
    before = sick("a", labels={"ccs.restart.count": "3"})
    before.meta.name = "web-1-aaaaaa"
    p = plan_service(app(), svc, [before], nodes("n1"), {}, at(5))
    (retire,) = p.actions
    assert isinstance(retire, SetDesired) and retire.desired_state == D_REMOVED
    assert dict(retire.labels) == {"ccs.unhealthy.since": at(0).isoformat()}
    # One event for the retirement, in place of the generic "Removing": why and how.
    assert event_of(retire, before) == event_of(retire, None) == retire.event
    assert retire.event is not None and retire.event.about == ""  # about the container it retires
    assert retire.event.reason == "UnhealthyReplaced" and retire.event.warning
    assert retire.event.message == (
        "web-1-aaaaaa is replaced because it is unhealthy (since 2025-01-01T12:00:00+00:00): restart #4 of its "
        "slot, after a 5s backoff; stop-first: it is stopped, and a new container starts once it has")
    # The agent stops it: the replacement carries count, failure time, streak, and what it replaces.
    (stopped,) = apply_actions([before], p.actions, svc, at(5), Ids())
    stopped.status.state = STOPPED
    stopped.status.updated_at.FromDatetime(at(7))
    p = plan_service(app(), svc, [stopped], nodes("n1"), {}, at(8))
    (create,) = p.actions
    assert isinstance(create, CreateContainer) and create.event is None  # the generic "Created"
    assert event_of(create, None) == ActionEvent(
        "Created", "replaces a, stopped because it was unhealthy (stop-first)")
    assert dict(create.labels) == {"ccs.restart.count": "4", "ccs.restart.failures": at(0).isoformat(),
                                   "ccs.unhealthy.streak": "1", "ccs.replaces": "a"}


def test_start_first_tells_one_event_about_the_unhealthy_container_with_the_creation() -> None:
    before = sick("a")
    before.meta.name = "web-1-aaaaaa"
    p = plan_service(app(), web(order="start-first"), [before], nodes("n1"), {}, at(5))
    (create,) = p.actions
    assert isinstance(create, CreateContainer)
    assert dict(create.labels)["ccs.replaces"] == "a" and dict(create.labels)["ccs.unhealthy.streak"] == "1"
    # In place of the generic "Created": the event is about the unhealthy container.
    assert event_of(create, None) == create.event
    assert create.event is not None and create.event.about == "web-1-aaaaaa"
    assert create.event.reason == "UnhealthyReplaced" and create.event.warning
    assert create.event.message.endswith(
        "restart #1 of its slot, after a 5s backoff; start-first: a new container starts beside it, "
        "and it goes once that one is ready")


def test_a_slot_whose_new_containers_are_unhealthy_too_backs_off_exponentially() -> None:
    """Unhealthy, replaced, the replacement unhealthy too ...: the waits grow 5, 10, 20, 40 s."""
    svc = web()
    containers = [sick("a")]
    ids = Ids()
    waits: list[float | None] = []
    now = at(0)
    for _ in range(4):
        p = plan_service(app(), svc, containers, nodes("n1"), {}, now)
        assert shorts(p.actions) == []
        waits.append(p.requeue_after)
        now = now + (p.requeue_after or 0) * (at(1) - at(0))
        p = plan_service(app(), svc, containers, nodes("n1"), {}, now)
        assert [type(a) for a in p.actions] == [SetDesired]
        containers = apply_actions(containers, p.actions, svc, now, ids)
        for c in containers:  # the agent stops the retired one ...
            if c.desired_state == D_REMOVED:
                c.status.state = REMOVED
        p = plan_service(app(), svc, containers, nodes("n1"), {}, now)
        assert shorts(p.actions) == ["delete " + containers[0].meta.id, "create 1"]
        containers = apply_actions(containers, p.actions, svc, now, ids)
        (new,) = containers  # ... and the replacement turns unhealthy too, at once
        new.node, new.status.state = "n1", UNHEALTHY
        new.status.updated_at.FromDatetime(now)
        new.status.started_at.FromDatetime(now)
    assert waits == [5.0, 10.0, 20.0, 40.0]


def test_with_no_health_reported_unhealthy_a_replacement_never_starts() -> None:
    """The rule reads only the agent's verdict: RUNNING (no check) and STARTING are left alone."""
    containers = [container("a", 1, healthcheck=True), container("b", 2, state=STARTING, healthcheck=True)]
    p = plan_service(app(), web(replicas=2), containers, nodes("n1"), {}, at(600))
    assert shorts(p.actions) == [] and p.requeue_after is None


@pytest.mark.parametrize(
    ("svc", "containers", "error"),
    [
        (web(order="sideways"), [sick("a")],
         "service web: spec.update_config.order 'sideways' is not one of stop-first, start-first"),
        (web(), [sick("a", labels={"ccs.unhealthy.streak": "lots"})],
         "container a: label ccs.unhealthy.streak holds 'lots', not a count"),
        (web(), [sick("a", desired=D_REMOVED, state=STOPPED, labels={"ccs.unhealthy.since": "noon"})],
         "container a: label ccs.unhealthy.since holds 'noon', which is not an ISO-8601 time"),
    ],
    ids=["order", "streak label", "since label"],
)
def test_bad_input_is_refused_with_the_field_named(
    svc: pb.Service, containers: list[pb.Container], error: str
) -> None:
    with pytest.raises(PlanError, match=re.escape(error)):
        plan_service(app(), svc, containers, nodes("n1"), {}, at(600))
