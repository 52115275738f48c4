"""Table tests for restarts (condition, delay, max_attempts within window) and depends_on gating."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime

import pytest

from ccs.v1 import resources_pb2 as pb
from controlplane.planner import (
    Counts,
    CreateContainer,
    PlanError,
    count,
    plan_service,
    resolve_policy,
)

from .test_planner_helpers import T0, Ids, app, at, container, nodes, replan, service, shorts

EXITED = pb.CONTAINER_STATE_EXITED
FAILED = pb.CONTAINER_STATE_FAILED


def history(*seconds: float) -> dict[str, str]:
    """Labels of a container whose slot already restarted after failures at these times."""
    return {
        "ccs.restart.count": str(len(seconds)),
        "ccs.restart.failures": ",".join(at(s).isoformat() for s in seconds),
    }


@dataclass
class RestartCase:
    name: str
    svc: pb.Service
    dead: pb.Container
    now: datetime
    expect: list[str]
    requeue_after: float | None = None
    message: str = ""
    labels: Mapping[str, str] = field(default_factory=dict)


RESTARTS = [
    RestartCase("any (default): an exit is replaced after the default 5s delay",
                service(), container("a", state=EXITED, exit_code=1, changed=0), at(5),
                ["remove a", "create 1"],
                labels={"ccs.restart.count": "1", "ccs.restart.failures": at(0).isoformat()}),
    RestartCase("the delay not yet elapsed asks for a requeue",
                service(), container("a", state=EXITED, exit_code=1, changed=0), at(2), [],
                requeue_after=3.0, message="restart pending in 3.0s"),
    RestartCase("restart_policy.delay_ms is honoured",
                service(delay_ms=30_000), container("a", state=EXITED, changed=0), at(10), [],
                requeue_after=20.0),
    RestartCase("any restarts a clean exit too",
                service(condition="any"), container("a", state=EXITED, exit_code=0), at(6),
                ["remove a", "create 1"]),
    RestartCase("an unknown death time restarts at once rather than never",
                service(), container("a", state=EXITED, exit_code=1, changed=None), at(0),
                ["remove a", "create 1"]),
    RestartCase("none: a failure is final, with a reason",
                service(condition="none"), container("a", state=EXITED, exit_code=2), at(60),
                ["failed a"], message="slot 1: exited with code 2; not restarted"),
    RestartCase("restart: no maps to condition none",
                service(restart="no"), container("a", state=EXITED, exit_code=0), at(60),
                ["completed a"], message="1 completed"),
    RestartCase("on-failure: a clean exit completes",
                service(condition="on-failure"), container("a", state=EXITED), at(60),
                ["completed a"]),
    RestartCase("on-failure: a non-zero exit restarts",
                service(condition="on-failure"), container("a", state=EXITED, exit_code=1), at(60),
                ["remove a", "create 1"]),
    RestartCase("on-failure: a failed start (pull error) restarts",
                service(condition="on-failure"), container("a", state=FAILED), at(60),
                ["remove a", "create 1"]),
    RestartCase("max_attempts reached within the window gives up with a crash-loop message",
                service(max_attempts=3, window_ms=60_000),
                container("a", state=EXITED, exit_code=1, changed=30, labels=history(0, 10, 20)),
                at(40), ["failed a"],
                message="slot 1: crash loop: died 4 times within 1m, last exited with code 1 "
                        "(restart_policy.max_attempts=3 reached)"),
    RestartCase("failures older than the window no longer count",
                service(max_attempts=3, window_ms=60_000),
                container("a", state=EXITED, exit_code=1, changed=100, labels=history(0, 10, 45)),
                at(105), ["remove a", "create 1"],
                labels={"ccs.restart.count": "4",
                        "ccs.restart.failures": f"{at(45).isoformat()},{at(100).isoformat()}"}),
    RestartCase("without a window every restart counts",
                service(max_attempts=2),
                container("a", state=EXITED, exit_code=1, changed=9000, labels=history(0, 4000)),
                at(9010), ["failed a"], message="crash loop: died 3 times, last exited with code 1"),
    RestartCase("restart: on-failure:N sets max_attempts",
                service(restart="on-failure:1"),
                container("a", state=EXITED, exit_code=3, changed=50, labels=history(0)),
                at(60), ["failed a"]),
    RestartCase("history is capped at max_attempts entries",
                service(max_attempts=2),
                container("a", state=EXITED, exit_code=1, changed=50, labels=history(40)),
                at(60), ["remove a", "create 1"],
                labels={"ccs.restart.count": "2",
                        "ccs.restart.failures": f"{at(40).isoformat()},{at(50).isoformat()}"}),
]


@pytest.mark.parametrize("case", RESTARTS, ids=[c.name for c in RESTARTS])
def test_restart_policy(case: RestartCase) -> None:
    plan = plan_service(app(), case.svc, [case.dead], nodes("n1"), {}, case.now)
    assert shorts(plan.actions) == case.expect
    assert plan.requeue_after == case.requeue_after
    assert case.message in plan.status.message
    created = [a for a in plan.actions if isinstance(a, CreateContainer)]
    if case.labels:
        assert dict(created[0].labels) == case.labels
    _, again = replan(app(), case.svc, [case.dead], nodes("n1"), {}, case.now, plan)
    assert shorts(again.actions) == []


def test_a_restart_loop_converges_to_a_stopped_slot() -> None:
    """Crash, restart, crash ... through the reference applier until the policy gives up."""
    svc = service(max_attempts=2, window_ms=60_000)
    containers = [container("a", state=EXITED, exit_code=1, changed=0)]
    seen: list[list[str]] = []
    ids = Ids()
    for step in range(4):
        now = at(10 * step + 5)
        plan = plan_service(app(), svc, containers, nodes("n1"), {}, now)
        seen.append(shorts(plan.actions))
        containers, again = replan(app(), svc, containers, nodes("n1"), {}, now, plan, ids=ids)
        assert shorts(again.actions) == []
        for c in containers:  # the agent: removes retired ones, the new one crashes at once
            if c.desired_state == pb.DESIRED_STATE_REMOVED:
                c.status.state = pb.CONTAINER_STATE_REMOVED
            elif c.desired_state == pb.DESIRED_STATE_RUNNING and not c.status.state:
                c.node, c.status.state, c.status.exit_code = "n1", EXITED, 1
                c.status.updated_at.FromDatetime(now)
    assert seen == [
        ["remove a", "create 1"],
        ["delete a", "remove new1", "create 1"],
        ["delete new1", "failed new2"],
        [],
    ]


@pytest.mark.parametrize(
    ("svc", "error"),
    [
        (service(condition="sometimes"),
         "service web: spec.restart_policy.condition 'sometimes' is not one of none, on-failure, any"),
        (service(restart="sometimes"), "service web: spec.restart 'sometimes' is not one of"),
        (service(restart="on-failure:x"), "the count after 'on-failure:' must be a non-negative"),
        (service(restart="always:3"), "only on-failure takes :N"),
        (service(delay_ms=-1), "spec.restart_policy.delay_ms must not be negative"),
        (service(depends_on=[("db", "service_ready")]),
         r"service web: spec.depends_on\[0\].condition 'service_ready' is not one of"),
    ],
    ids=["condition", "restart", "restart count", "restart count on always", "delay", "depends_on"],
)
def test_bad_specs_are_refused_with_the_field_named(svc: pb.Service, error: str) -> None:
    with pytest.raises(PlanError, match=error):
        plan_service(app(), svc, [], nodes("n1"), {}, T0)


def test_a_corrupt_history_label_is_named() -> None:
    dead = container("a", state=EXITED, labels={"ccs.restart.failures": "yesterday"})
    error = re.escape("container a: label ccs.restart.failures holds 'yesterday'")
    with pytest.raises(PlanError, match=error):
        plan_service(app(), service(), [dead], nodes("n1"), {}, at(60))


def test_restart_policy_wins_over_the_compose_restart_key() -> None:
    policy = resolve_policy("web", service(restart="on-failure:5", condition="any").spec)
    assert (policy.condition, policy.max_attempts) == ("any", 5)


# ---------------------------------------------------------------- depends_on


@dataclass
class DepCase:
    name: str
    depends_on: Sequence[tuple[str, str]]
    deps: Mapping[str, Counts]
    expect: list[str]
    message: str = ""


DEPS = [
    DepCase("service_started: waits for every replica to run", [("db", "service_started")],
            {"db": Counts(desired=2, running=1)}, [],
            "waiting for db to start (1/2 running)"),
    DepCase("service_started: met", [("db", "service_started")],
            {"db": Counts(desired=2, running=2)}, ["create 1"]),
    DepCase("empty condition means service_started", [("db", "")],
            {"db": Counts(desired=1)}, [], "waiting for db to start (0/1 running)"),
    DepCase("service_healthy: waits for health", [("db", "service_healthy")],
            {"db": Counts(desired=2, running=2, healthy=1)}, [],
            "waiting for db to be healthy (1/2 healthy)"),
    DepCase("service_healthy: met", [("db", "service_healthy")],
            {"db": Counts(desired=2, running=2, healthy=2)}, ["create 1"]),
    DepCase("service_completed_successfully: waits for exit 0",
            [("migrate", "service_completed_successfully")], {"migrate": Counts(desired=1)}, [],
            "waiting for migrate to complete successfully (0/1 exited 0)"),
    DepCase("service_completed_successfully: met",
            [("migrate", "service_completed_successfully")],
            {"migrate": Counts(desired=1, completed=1)}, ["create 1"]),
    DepCase("a required dependency that does not exist", [("db", "service_started")], {}, [],
            "waiting for db: no such service"),
    DepCase("every unmet dependency is named",
            [("db", "service_healthy"), ("cache", "service_started")],
            {"db": Counts(desired=1), "cache": Counts(desired=1)}, [],
            "waiting for db to be healthy (0/1 healthy); waiting for cache to start (0/1 running)"),
]


@pytest.mark.parametrize("case", DEPS, ids=[c.name for c in DEPS])
def test_depends_on_gates_new_containers(case: DepCase) -> None:
    svc = service(depends_on=case.depends_on)
    plan = plan_service(app(), svc, [], nodes("n1"), case.deps, T0)
    assert shorts(plan.actions) == case.expect
    assert case.message in plan.status.message


def test_depends_on_also_gates_restarts_and_app_start() -> None:
    svc = service(replicas=2, depends_on=[("db", "service_healthy")])
    dead = container("a", 1, state=EXITED, exit_code=1)
    parked = container("b", 2, desired=pb.DESIRED_STATE_STOPPED, state=pb.CONTAINER_STATE_STOPPED)
    waiting = {"db": Counts(desired=1, running=1)}
    plan = plan_service(app(), svc, [dead, parked], nodes("n1"), waiting, at(60))
    assert shorts(plan.actions) == []
    assert "waiting for db to be healthy (0/1 healthy)" in plan.status.message
    ready = {"db": Counts(desired=1, running=1, healthy=1)}
    plan = plan_service(app(), svc, [dead, parked], nodes("n1"), ready, at(60))
    assert shorts(plan.actions) == ["remove a", "create 1", "run b"]


def test_a_running_service_does_not_report_unmet_dependencies() -> None:
    svc = service(depends_on=[("db", "service_healthy")])
    plan = plan_service(app(), svc, [container("a")], nodes("n1"), {"db": Counts(desired=1)}, T0)
    assert plan.status.message == "1/1 running"


@pytest.mark.parametrize(
    ("healthcheck", "state", "exit_code", "expected"),
    [
        (False, pb.CONTAINER_STATE_RUNNING, 0, Counts(1, running=1, healthy=1)),
        (True, pb.CONTAINER_STATE_RUNNING, 0, Counts(1, running=1)),
        (True, pb.CONTAINER_STATE_HEALTHY, 0, Counts(1, running=1, healthy=1)),
        (False, pb.CONTAINER_STATE_PULLING, 0, Counts(1, pending=1)),
        (False, EXITED, 0, Counts(1, completed=1)),
        (False, EXITED, 1, Counts(1)),
    ],
    ids=["running, no check", "running, check", "healthy", "pulling", "exit 0", "exit 1"],
)
def test_count_feeds_the_dependency_gate(
    healthcheck: bool, state: pb.ContainerState, exit_code: int, expected: Counts
) -> None:
    c = container("a", state=state, exit_code=exit_code, healthcheck=healthcheck)
    assert count([c], 1, service(healthcheck=healthcheck).spec) == expected
