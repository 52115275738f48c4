"""Counting containers, and judging ``depends_on`` conditions from those counts.

The same ``Counts`` feed a service's own ``ServiceStatus`` and, for the services that depend on it,
the dependency gate, so "db is healthy" means the same thing in ``ccs ps`` and in the gate.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from ccs.container_states import RUNNING_STATES
from ccs.v1 import resources_pb2 as pb

from .containers import is_gone, is_live, is_ready
from .errors import PlanError

CONDITION_STARTED = "service_started"
CONDITION_HEALTHY = "service_healthy"
CONDITION_COMPLETED = "service_completed_successfully"
DEPENDENCY_CONDITIONS = (CONDITION_STARTED, CONDITION_HEALTHY, CONDITION_COMPLETED)


@dataclass(frozen=True)
class Counts:
    """What a service's containers look like right now.

    ``running``: should run and is running (healthy or not). ``healthy``: running and passing its
    health check, or running with none. ``completed``: exited with code 0 and not being removed.
    ``pending``: should run but is not running yet (unplaced, pulling, starting).
    """

    desired: int
    running: int = 0
    healthy: int = 0
    completed: int = 0
    pending: int = 0


def count(containers: Iterable[pb.Container], desired: int, spec: pb.ServiceSpec) -> Counts:
    """Counts over every generation of ``containers`` (one service's), ignoring ones being removed.

    ``spec`` is the service spec, used for containers that carry no spec snapshot.
    """
    running = healthy = completed = pending = 0
    for c in containers:
        if is_gone(c):
            continue
        state = c.status.state
        if is_live(c):
            if state in RUNNING_STATES:
                running += 1
            else:
                pending += 1
            healthy += is_ready(c, spec)
        elif state == pb.CONTAINER_STATE_EXITED and c.status.exit_code == 0:
            completed += 1
    return Counts(desired, running, healthy, completed, pending)


DependencyState = Mapping[str, Counts]
"""``Counts`` of the services this one depends on, keyed by service name. The reconciler builds it
with :func:`count` over each dependency's containers; a missing key means no such service."""


def waiting_for(
    service: str, depends_on: Sequence[pb.Dependency], deps: DependencyState
) -> list[str]:
    """Why ``service`` may not start new containers yet: one phrase per unmet dependency.

    An empty list means every dependency is ready. A dependency that does not exist is waited for
    when ``required`` is set and skipped otherwise. Proto3 cannot express Compose's default
    ``required: true``, so the Compose converter must write ``required`` explicitly.
    """
    reasons: list[str] = []
    for i, dep in enumerate(depends_on):
        condition = dep.condition or CONDITION_STARTED
        if condition not in DEPENDENCY_CONDITIONS:
            raise PlanError(
                f"service {service}: spec.depends_on[{i}].condition {dep.condition!r} is not one of "
                + ", ".join(DEPENDENCY_CONDITIONS)
            )
        seen = deps.get(dep.service)
        if seen is None:
            if dep.required:
                reasons.append(f"waiting for {dep.service}: no such service")
            continue
        reason = _unmet(dep.service, condition, seen)
        if reason:
            reasons.append(reason)
    return reasons


def _unmet(name: str, condition: str, c: Counts) -> str:
    if condition == CONDITION_STARTED and c.running < c.desired:
        return f"waiting for {name} to start ({c.running}/{c.desired} running)"
    if condition == CONDITION_HEALTHY and c.healthy < c.desired:
        return f"waiting for {name} to be healthy ({c.healthy}/{c.desired} healthy)"
    if condition == CONDITION_COMPLETED and c.completed < c.desired:
        return (
            f"waiting for {name} to complete successfully ({c.completed}/{c.desired} exited 0)"
        )
    return ""


def service_status(
    counts: Counts, notes: Sequence[str], containers: Iterable[pb.Container]
) -> pb.ServiceStatus:
    """The ``ServiceStatus`` the reconciler stores: counts, one message, the endpoints and the
    application-network addresses of its running containers.

    The message starts with ``running/desired`` and appends what needs attention (dependencies,
    crash loops, pending placement, drains), e.g. ``1/3 running; waiting for db to be healthy``.
    """
    parts = [f"{counts.running}/{counts.desired} running"]
    if counts.pending:
        parts.append(f"{counts.pending} starting or pending placement")
    parts.extend(notes)
    running = [c for c in containers if is_live(c) and c.status.state in RUNNING_STATES]
    endpoints = [e for c in running for e in c.status.endpoints]
    addresses = sorted(
        (c.meta.name, network, c.node, address)
        for c in running for network, address in c.status.addresses.items()
    )
    return pb.ServiceStatus(
        desired=counts.desired,
        running=counts.running,
        healthy=counts.healthy,
        message="; ".join(parts),
        endpoints=endpoints,
        addresses=[pb.ContainerAddress(container=name, node=node, network=network, address=address)
                   for name, network, node, address in addresses],
    )
