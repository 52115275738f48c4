"""The actions a planner returns: plain frozen values, one per etcd write.

A planner never writes. The reconcile pass applies a plan to copies of the records with
``apply_actions`` (:mod:`controlplane.planner.apply`, the only definition of what each action
does) and writes the difference in transactions guarded by the ``mod_revision`` of what it read,
so a plan computed from stale state is refused and simply recomputed.

Each action carries a ``reason`` written for humans; :func:`describe` renders an action with it
for logs and test failure output. The reconcile pass does not write an Event per container
action (a node going down, a service that cannot be planned and a release's phases get one);
an action that carries a :class:`Note` (the replacement of an UNHEALTHY container) gets its
Event, written in the same etcd transaction as the record the action changes.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from ccs.v1 import resources_pb2 as pb


@dataclass(frozen=True)
class Note:
    """An Event about container ``subject`` (its name) of the planned service, to be written in
    the same transaction as the record of the action that carries it."""

    subject: str
    reason: str
    message: str
    warning: bool = True


@dataclass(frozen=True)
class CreateContainer:
    """Create a container record for ``slot`` from the service's *current* spec.

    ``node`` is ``None`` for replicated services (the scheduler places it afterwards) and the target
    node for global services. The applier copies cluster, application and spec from the Service
    record it read, and stamps ``spec_generation``/``app_revision`` (which are the service's, repeated
    here so that the applier can refuse a plan made for another generation). ``labels`` carry the
    slot's restart history (see :mod:`controlplane.planner.restart`).
    """

    service: str
    slot: int
    node: str | None
    spec_generation: int
    app_revision: int
    labels: tuple[tuple[str, str], ...]
    reason: str
    note: Note | None = None


@dataclass(frozen=True)
class SetDesired:
    """Change a container's ``desired_state`` (RUNNING, STOPPED or REMOVED); ``labels`` are
    added to the container's (an UNHEALTHY container retired stop-first records when it
    turned unhealthy, for its replacement)."""

    container: str
    desired_state: pb.DesiredState
    reason: str
    labels: tuple[tuple[str, str], ...] = ()
    note: Note | None = None


@dataclass(frozen=True)
class MarkFinished:
    """Stop a container for good because its restart policy says so.

    The applier sets ``desired_state`` STOPPED (the container and its logs stay for inspection) and
    the labels ``ccs.outcome=<outcome>`` and ``ccs.outcome.message=<message>``. Those labels are how
    later passes know the slot is settled rather than parked by an application stop.
    """

    container: str
    outcome: Literal["completed", "failed"]
    message: str


@dataclass(frozen=True)
class DeleteContainer:
    """Delete a container record: the agent reported it removed, it was never placed, or its node no
    longer exists (nothing could ever remove it)."""

    container: str
    reason: str


@dataclass(frozen=True)
class SetNodeState:
    """Set ``node.status.state`` (the node planner only ever sets DOWN; the dispatcher sets READY)."""

    node: str
    state: pb.NodeState
    message: str


Action = CreateContainer | SetDesired | MarkFinished | DeleteContainer | SetNodeState


def describe(action: Action) -> str:
    """One line for logs, events and test failure output."""
    match action:
        case CreateContainer(slot=slot, node=node, reason=reason):
            where = f" on {node}" if node else ""
            return f"create slot {slot}{where}: {reason}"
        case SetDesired(container=cid, desired_state=state, reason=reason):
            return f"{cid} -> {pb.DesiredState.Name(state)}: {reason}"
        case MarkFinished(container=cid, outcome=result, message=message):
            return f"{cid} {result}: {message}"
        case DeleteContainer(container=cid, reason=reason):
            return f"delete {cid}: {reason}"
        case SetNodeState(node=node, state=state, message=message):
            return f"node {node} -> {pb.NodeState.Name(state)}: {message}"
