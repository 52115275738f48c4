"""Table tests for ``plan_service``: counts, global mode, app lifecycle, drain, cleanup, idempotence."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime

import pytest

from ccs.v1 import resources_pb2 as pb
from controlplane.planner import Counts, CreateContainer, PlanError, describe, plan_service

from .test_planner_helpers import T0, app, at, container, node, nodes, replan, service, shorts

RUNNING = pb.CONTAINER_STATE_RUNNING
PENDING = pb.CONTAINER_STATE_PENDING
HEALTHY = pb.CONTAINER_STATE_HEALTHY
REMOVED = pb.CONTAINER_STATE_REMOVED
EXITED = pb.CONTAINER_STATE_EXITED
D_STOPPED = pb.DESIRED_STATE_STOPPED
D_REMOVED = pb.DESIRED_STATE_REMOVED


@dataclass
class Case:
    name: str
    svc: pb.Service
    containers: Sequence[pb.Container]
    expect: list[str]
    application: pb.Application = field(default_factory=app)
    cluster: Mapping[str, pb.Node] = field(default_factory=lambda: nodes("n1", "n2", "n3"))
    deps: Mapping[str, Counts] = field(default_factory=dict)
    now: datetime = T0
    global_nodes: Sequence[str] | None = None
    message: str = ""
    removable: bool = False


CASES = [
    # ---------------------------------------------------------------- replicated counts
    Case("fresh deploy creates every slot", service(replicas=3), [],
         ["create 1", "create 2", "create 3"], message="0/3 running"),
    Case("scale up creates only the missing slots", service(replicas=3),
         [container("a", 1), container("b", 2, "n2")], ["create 3"]),
    Case("steady state does nothing", service(replicas=2),
         [container("a", 1), container("b", 2, "n2")], [], message="2/2 running"),
    Case("scale down removes the highest slots, even healthy ones",
         service(replicas=1),
         [container("a", 1, state=pb.CONTAINER_STATE_UNHEALTHY), container("b", 2, state=HEALTHY),
          container("c", 3)],
         ["remove b", "remove c"]),
    Case("scale down deletes a record that was never placed", service(replicas=1),
         [container("a", 1), container("b", 2, "", state=PENDING)], ["delete b"]),
    Case("scale to zero", service(replicas=0), [container("a", 1)], ["remove a"],
         message="1/0 running"),
    Case("a pending container holds its slot", service(replicas=1),
         [container("a", 1, "", state=PENDING)], [],
         message="0/1 running; 1 starting or pending placement"),
    Case("duplicate of one generation keeps the ready one", service(replicas=1),
         [container("a", 1, "n1", state=pb.CONTAINER_STATE_STARTING, created=-5),
          container("b", 1, "n2", created=-50)], ["remove a"]),
    Case("an old generation is left to the release reconciler", service(replicas=2, generation=3),
         [container("a", 1, gen=2), container("b", 2, gen=3)], []),
    Case("a slot with two generations is a release in progress", service(replicas=1, generation=2),
         [container("a", 1, gen=1), container("b", 1, "n2", gen=2, state=EXITED, exit_code=1)], []),
    Case("a container on a deleted node is dropped and replaced", service(replicas=1),
         [container("a", 1, "gone")], ["delete a", "create 1"]),
    Case("a removed container's record is deleted once the agent reports it", service(replicas=1),
         [container("a", 1, desired=D_REMOVED, state=REMOVED), container("b", 1)], ["delete a"]),
    Case("a retired container still running on a ready node holds its slot until it stops (stop-first)",
         service(replicas=1), [container("a", 1, desired=D_REMOVED, state=RUNNING)], [],
         message="0/1 running; 1 slot(s) wait for the old container to stop"),
    Case("a retired container on a down node does not hold its slot", service(replicas=1),
         [container("a", 1, desired=D_REMOVED, state=RUNNING)], ["create 1"],
         cluster={"n1": node("n1", state=pb.NODE_STATE_DOWN)}),
    # ---------------------------------------------------------------- global mode
    Case("global: one container per eligible node", service(glob=True), [],
         ["create n1", "create n2"], global_nodes=["n1", "n2"], message="0/2 running"),
    Case("global: a node that is no longer eligible loses its container", service(glob=True),
         [container("a", 0, "n1"), container("b", 0, "n3")], ["remove b"], global_nodes=["n1"]),
    Case("global: a draining node gets none and its container goes", service(glob=True),
         [container("a", 0, "n1"), container("b", 0, "n2")], ["remove b"],
         cluster=nodes("n1", "n2", draining=["n2"]), global_nodes=["n1", "n2"]),
    # ---------------------------------------------------------------- application lifecycle
    Case("app stopped: containers are stopped and kept, no new ones", service(replicas=3),
         [container("a", 1), container("b", 2, state=EXITED, exit_code=1)],
         ["stop a", "stop b"], application=app(D_STOPPED), message="1/0 running; application stopped"),
    Case("app started: parked containers run again", service(replicas=2),
         [container("a", 1, desired=D_STOPPED, state=pb.CONTAINER_STATE_STOPPED),
          container("b", 2, desired=D_STOPPED, state=pb.CONTAINER_STATE_STOPPED)],
         ["run a", "run b"]),
    Case("app started: a slot the restart policy gave up on stays down", service(replicas=1),
         [container("a", 1, desired=D_STOPPED, state=EXITED, exit_code=1,
                    labels={"ccs.outcome": "failed", "ccs.outcome.message": "crash loop: died 4 times"})],
         [], message="slot 1: crash loop: died 4 times"),
    Case("app removed: placed containers are removed, unplaced ones deleted", service(replicas=2),
         [container("a", 1), container("b", 2, "", state=PENDING)], ["remove a", "delete b"],
         application=app(D_REMOVED), message="removing"),
    Case("app removed: the last reported removal makes the service removable", service(replicas=1),
         [container("a", 1, desired=D_REMOVED, state=REMOVED)], ["delete a"],
         application=app(D_REMOVED), removable=True),
    # ---------------------------------------------------------------- drain (start-first)
    Case("drain: a replacement is created while the old one serves", service(replicas=1),
         [container("a", 1, "n1")], ["create 1"], cluster=nodes("n1", "n2", draining=["n1"]),
         message="draining: 1 container(s) wait for a ready replacement"),
    Case("drain: the old one stays until the replacement runs", service(replicas=1),
         [container("a", 1, "n1"), container("b", 1, "n2", state=pb.CONTAINER_STATE_STARTING)], [],
         cluster=nodes("n1", "n2", draining=["n1"])),
    Case("drain: the old one goes once the replacement runs", service(replicas=1),
         [container("a", 1, "n1"), container("b", 1, "n2")], ["remove a"],
         cluster=nodes("n1", "n2", draining=["n1"])),
    Case("drain: with a health check, running is not enough", service(replicas=1, healthcheck=True),
         [container("a", 1, "n1", healthcheck=True), container("b", 1, "n2", healthcheck=True)], [],
         cluster=nodes("n1", "n2", draining=["n1"])),
    Case("drain: a healthy replacement releases the old one", service(replicas=1, healthcheck=True),
         [container("a", 1, "n1", healthcheck=True),
          container("b", 1, "n2", healthcheck=True, state=HEALTHY)], ["remove a"],
         cluster=nodes("n1", "n2", draining=["n1"])),
    Case("drain: a stopped app's container just goes", service(replicas=1),
         [container("a", 1, "n1", desired=D_STOPPED, state=pb.CONTAINER_STATE_STOPPED)], ["remove a"],
         application=app(D_STOPPED), cluster=nodes("n1", "n2", draining=["n1"])),
]


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_plan_service(case: Case) -> None:
    plan = plan_service(
        case.application, case.svc, case.containers, case.cluster, case.deps, case.now,
        global_nodes=case.global_nodes,
    )
    assert shorts(plan.actions) == case.expect
    assert case.message in plan.status.message
    assert plan.removable is case.removable


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_applying_a_plan_then_planning_again_does_nothing(case: Case) -> None:
    plan = plan_service(
        case.application, case.svc, case.containers, case.cluster, case.deps, case.now,
        global_nodes=case.global_nodes,
    )
    after, again = replan(
        case.application, case.svc, case.containers, case.cluster, case.deps, case.now, plan,
        case.global_nodes,
    )
    assert shorts(again.actions) == [], [c.meta.id for c in after]


def test_created_containers_carry_the_current_generation_and_global_node() -> None:
    svc = service(glob=True, generation=7)
    plan = plan_service(app(), svc, [], nodes("n1"), {}, T0, global_nodes=["n1"])
    assert plan.actions == (
        CreateContainer(
            service="web", slot=0, node="n1", spec_generation=7, app_revision=4, labels=(),
            reason="node n1 has no container of this global service",
        ),
    )
    assert describe(plan.actions[0]) == (
        "create slot 0 on n1: node n1 has no container of this global service"
    )


def test_status_counts_running_healthy_and_pending() -> None:
    svc = service(replicas=4, healthcheck=True)
    containers = [
        container("a", 1, state=HEALTHY, healthcheck=True),
        container("b", 2, state=RUNNING, healthcheck=True),
        container("c", 3, state=pb.CONTAINER_STATE_UNHEALTHY, healthcheck=True),
        container("d", 4, "", state=PENDING, healthcheck=True),
        container("old", 1, desired=D_REMOVED, state=RUNNING, healthcheck=True),
    ]
    status = plan_service(app(), svc, containers, nodes("n1"), {}, T0).status
    assert (status.desired, status.running, status.healthy) == (4, 3, 1)
    # c is UNHEALTHY: replaced once restart_policy.delay (5s by default) has passed.
    assert status.message == "3/4 running; 1 starting or pending placement; unhealthy: replacement in 5.0s (backoff)"


def test_status_lists_endpoints_of_running_containers_only() -> None:
    up = container("a", 1)
    up.status.endpoints.add(container="a", address="10.0.0.1", published=8080, target=80)
    down = container("b", 2, state=PENDING)
    down.status.endpoints.add(container="b", address="10.0.0.2", published=8081, target=80)
    status = plan_service(app(), service(replicas=2), [up, down], nodes("n1"), {}, T0).status
    assert [e.container for e in status.endpoints] == ["a"]


def test_status_lists_the_network_addresses_of_running_containers() -> None:
    """What `ccs service get` shows: each running container's address on the application
    network(s), sorted by container; a stopped or pending one has none to show."""
    b = container("b", 2, "n2")
    b.meta.name = "web-2"
    b.status.addresses.update({"default": "10.128.0.3", "back": "10.128.1.3"})
    a = container("a", 1)
    a.meta.name = "web-1"
    a.status.addresses["default"] = "10.128.0.18"
    pending = container("c", 3, state=PENDING)
    pending.meta.name = "web-3"
    pending.status.addresses["default"] = "10.128.0.19"  # a stale report: not running
    status = plan_service(app(), service(replicas=3), [b, pending, a], nodes("n1", "n2"), {}, T0).status
    assert [(x.container, x.node, x.network, x.address) for x in status.addresses] == [
        ("web-1", "n1", "default", "10.128.0.18"),
        ("web-2", "n2", "back", "10.128.1.3"),
        ("web-2", "n2", "default", "10.128.0.3"),
    ]


@pytest.mark.parametrize(
    ("kwargs", "error"),
    [
        ({"now": datetime(2025, 1, 1)}, "now: must be a timezone-aware datetime"),
        ({"svc": service(glob=True)}, "service web: global_nodes is required for a global service"),
        ({"svc": service(glob=True), "global_nodes": ["nx"]}, "global_nodes: nx not among"),
    ],
    ids=["naive now", "global without nodes", "global node unknown"],
)
def test_bad_input_is_refused_with_the_field_named(kwargs: dict[str, object], error: str) -> None:
    args: dict[str, object] = {"svc": service(), "now": T0, "global_nodes": None} | kwargs
    with pytest.raises(PlanError, match=error):
        plan_service(
            app(), args["svc"], [], nodes("n1"), {}, args["now"],  # type: ignore[arg-type]
            global_nodes=args["global_nodes"],  # type: ignore[arg-type]
        )


def test_a_global_service_stops_without_global_nodes() -> None:
    plan = plan_service(
        app(pb.DESIRED_STATE_STOPPED), service(glob=True), [container("a", 0, "n1")], nodes("n1"),
        {}, T0,
    )
    assert shorts(plan.actions) == ["stop a"]


def test_a_service_being_removed_still_plans_with_an_invalid_restart_policy() -> None:
    """Removal must never be blocked by a spec error: that would strand containers."""
    for svc in (service(condition="sometimes"), service(condition="sometimes", glob=True)):
        plan = plan_service(
            app(), svc, [container("a", 1)], nodes("n1"), {}, at(0), service_deleted=True,
        )
        assert shorts(plan.actions) == ["remove a"]
