"""The actions a planner returns: plain frozen values, one per etcd write.

A planner never writes. The reconcile pass applies a plan to copies of the records with
``apply_actions`` (:mod:`controlplane.planner.apply`, the only definition of what each action
does) and writes the difference in transactions guarded by the ``mod_revision`` of what it read,
so a plan computed from stale state is refused and simply recomputed.

Each action carries a ``reason`` written for humans; :func:`describe` renders an action with it
for logs and test failure output, and :func:`event_of` says what the event log records of it.
The reconcile pass writes that Event in the transaction that writes the action's change, so
``ccs events`` says why each container was created, stopped, replaced or removed. An action
may carry its own :class:`ActionEvent` when the generic one would hide why (an UNHEALTHY
container replaced): one decision, one event.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from ccs.labels import OUTCOME_FAILED
from ccs.v1 import resources_pb2 as pb


@dataclass(frozen=True)
class ActionEvent:
    """What the event log says of an action that changed a container record.

    ``about``: the name of the container the event is about, when it is not the one the action
    writes (a start-first replacement is created for an unhealthy container, and its event is
    about that one); the event still commits in the transaction of the action's write.
    """

    reason: str
    message: str
    warning: bool = False
    about: str = ""


@dataclass(frozen=True)
class CreateContainer:
    """Create a container record for ``slot`` from the service's *current* spec.

    ``node`` is ``None`` for replicated services (the scheduler places it afterwards) and the target
    node for global services. The applier copies cluster, application and spec from the Service
    record it read, and stamps ``spec_generation``/``app_revision`` (which are the service's, repeated
    here so that the applier can refuse a plan made for another generation). ``labels`` carry the
    slot's restart history (see :mod:`controlplane.planner.restart`). ``event``: what the event
    log records of this creation, when not the generic ``Created`` (see :func:`event_of`).
    """

    service: str
    slot: int
    node: str | None
    spec_generation: int
    app_revision: int
    labels: tuple[tuple[str, str], ...]
    reason: str
    event: ActionEvent | None = None


@dataclass(frozen=True)
class SetDesired:
    """Change a container's ``desired_state`` (RUNNING, STOPPED or REMOVED); ``labels`` are
    added to the container's (an UNHEALTHY container retired stop-first records when it
    turned unhealthy, for its replacement); ``event`` as for :class:`CreateContainer`."""

    container: str
    desired_state: pb.DesiredState
    reason: str
    labels: tuple[tuple[str, str], ...] = ()
    event: ActionEvent | None = None


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



_DESIRED_REASON = {
    pb.DESIRED_STATE_RUNNING: "Starting",
    pb.DESIRED_STATE_STOPPED: "Stopping",
    pb.DESIRED_STATE_REMOVED: "Removing",
}


def event_of(action: Action, before: pb.Container | None) -> ActionEvent | None:
    """The Event to record for ``action`` applied to ``before`` (None for a new container), or None.

    One event per decision about a container, with the planner's reason as its message, as
    Kubernetes records a ReplicaSet's ``SuccessfulCreate``/``SuccessfulDelete`` and a kubelet's
    ``Killing``: what a user asks of the log is *why* a container was created, stopped, replaced
    or removed. Nothing is recorded for what decides nothing:

    - an action that changes nothing (the desired state it sets is already the record's);
    - deleting the record of a container already on its way out (desired REMOVED): the
      ``Removing`` event was written when it was retired, and the agent's removal is bookkeeping;
    - a node's state (the node pass writes its own ``NodeDown``), placement and status changes
      (the service's status message carries those, and they change with every report).

    An action that carries its own ``event`` gets that one instead of the generic one (not both):
    the retirement or start-first creation that replaces an UNHEALTHY container is recorded as
    one Warning ``UnhealthyReplaced`` saying why, as a kubelet records one ``Killing: container
    failed liveness probe, will be restarted`` rather than a kill and a probe failure.
    """
    match action:
        case CreateContainer(reason=reason, event=event):
            return event or ActionEvent("Created", reason)
        case SetDesired(desired_state=state, reason=reason, event=event):
            if before is not None and before.desired_state == state:
                return None
            return event or ActionEvent(_DESIRED_REASON.get(state, "Changed"), reason)
        case MarkFinished(outcome=outcome, message=message):
            if outcome == OUTCOME_FAILED:
                return ActionEvent("Failed", message, warning=True)
            return ActionEvent("Completed", message)
        case DeleteContainer(reason=reason):
            if before is not None and before.desired_state == pb.DESIRED_STATE_REMOVED:
                return None
            return ActionEvent("Deleted", reason)
        case SetNodeState():
            return None
