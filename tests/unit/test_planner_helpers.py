"""Builders shared by the planner's table tests: protobuf records with readable defaults.

(Named ``test_planner_*`` to sit with the planner's tests; it holds no tests itself.)
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, datetime, timedelta

from ccs.v1 import resources_pb2 as pb
from controlplane.planner import (
    Action,
    Counts,
    CreateContainer,
    DeleteContainer,
    MarkFinished,
    ServicePlan,
    SetDesired,
    SetNodeState,
    apply_actions,
    plan_service,
)

T0 = datetime(2025, 1, 1, 12, 0, 0, tzinfo=UTC)


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def node(
    nid: str,
    *,
    state: pb.NodeState = pb.NODE_STATE_READY,
    availability: pb.NodeAvailability = pb.NODE_AVAILABILITY_ACTIVE,
    heartbeat: float | None = 0.0,
) -> pb.Node:
    n = pb.Node(spec=pb.NodeSpec(availability=availability), status=pb.NodeStatus(state=state))
    n.meta.id = nid
    n.meta.name = nid
    if heartbeat is not None:
        n.status.last_heartbeat.FromDatetime(at(heartbeat))
    return n


def nodes(*ids: str, draining: Sequence[str] = ()) -> dict[str, pb.Node]:
    drain = pb.NODE_AVAILABILITY_DRAIN
    active = pb.NODE_AVAILABILITY_ACTIVE
    return {i: node(i, availability=drain if i in draining else active) for i in ids}


def app(state: pb.DesiredState = pb.DESIRED_STATE_RUNNING) -> pb.Application:
    a = pb.Application(spec=pb.ApplicationSpec(desired_state=state), revision=4)
    a.meta.name = "shop"
    return a


def service(
    name: str = "web",
    *,
    replicas: int = 1,
    generation: int = 1,
    glob: bool = False,
    condition: str = "",
    restart: str = "",
    delay_ms: int = 0,
    max_attempts: int = 0,
    window_ms: int = 0,
    depends_on: Sequence[tuple[str, str]] = (),
    healthcheck: bool = False,
) -> pb.Service:
    spec = pb.ServiceSpec(
        image="local/busybox:1",
        replicas=replicas,
        mode=pb.SERVICE_MODE_GLOBAL if glob else pb.SERVICE_MODE_REPLICATED,
        restart=restart,
        restart_policy=pb.RestartPolicy(
            condition=condition, delay_ms=delay_ms, max_attempts=max_attempts, window_ms=window_ms
        ),
        depends_on=[pb.Dependency(service=s, condition=c, required=True) for s, c in depends_on],
    )
    if healthcheck:
        spec.healthcheck.test.extend(["CMD", "true"])
    s = pb.Service(spec=spec, generation=generation, app_revision=4, application="shop")
    s.meta.name = name
    s.meta.id = name
    return s


def container(
    cid: str,
    slot: int = 1,
    node: str = "n1",
    *,
    state: pb.ContainerState = pb.CONTAINER_STATE_RUNNING,
    desired: pb.DesiredState = pb.DESIRED_STATE_RUNNING,
    gen: int = 1,
    exit_code: int = 0,
    changed: float | None = 0.0,
    created: float = -100.0,
    labels: Mapping[str, str] | None = None,
    healthcheck: bool = False,
) -> pb.Container:
    c = pb.Container(
        service="web", node=node, slot=slot, spec_generation=gen, desired_state=desired,
        status=pb.ContainerStatus(state=state, exit_code=exit_code),
    )
    c.meta.id = cid
    c.meta.created_at.FromDatetime(at(created))
    c.meta.labels.update(labels or {})
    if changed is not None:
        c.status.updated_at.FromDatetime(at(changed))
    if healthcheck:
        c.spec.healthcheck.test.extend(["CMD", "true"])
    return c


def short(action: Action) -> str:
    """A compact, stable rendering used in the expectation tables."""
    match action:
        case CreateContainer(slot=slot, node=n):
            return f"create {n}" if n else f"create {slot}"
        case SetDesired(container=cid, desired_state=state):
            verb = {pb.DESIRED_STATE_RUNNING: "run", pb.DESIRED_STATE_STOPPED: "stop"}
            return f"{verb.get(state, 'remove')} {cid}"
        case MarkFinished(container=cid, outcome=result):
            return f"{result} {cid}"
        case DeleteContainer(container=cid):
            return f"delete {cid}"
        case SetNodeState(node=n, state=state):
            return f"{n} {pb.NodeState.Name(state)}"


def shorts(actions: Sequence[Action]) -> list[str]:
    return [short(a) for a in actions]


class Ids:
    """Deterministic ids for containers created by ``apply_actions``."""

    def __init__(self) -> None:
        self.n = 0

    def __call__(self, action: CreateContainer) -> str:
        self.n += 1
        return f"new{self.n}"


def replan(
    application: pb.Application,
    svc: pb.Service,
    containers: Sequence[pb.Container],
    cluster: Mapping[str, pb.Node],
    deps: Mapping[str, Counts],
    now: datetime,
    plan: ServicePlan,
    global_nodes: Sequence[str] | None = None,
    ids: Ids | None = None,
) -> tuple[list[pb.Container], ServicePlan]:
    """Apply ``plan`` with the reference semantics and plan again on the result."""
    after = apply_actions(containers, plan.actions, svc, now, ids or Ids())
    again = plan_service(application, svc, after, cluster, deps, now, global_nodes=global_nodes)
    return after, again
