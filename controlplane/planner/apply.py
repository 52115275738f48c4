"""What each action means, as a pure function over container records.

The reconcile passes do not interpret actions themselves: :mod:`controlplane.reconcile.service_pass`
(services) and :mod:`controlplane.reconcile.release_pass` (releases) apply a plan to copies of the
records with :func:`apply_actions`, then :mod:`controlplane.reconcile.container_diff` writes the
difference between before and after (adding node placements, ``updated_at``, an event per action
and the guarded transactions). So this is the only definition of
each action, and having it next to the planners lets tests check the property that matters most
for a level-triggered reconciler: planning again on the result of a plan yields no further actions.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime

from ccs.labels import LABEL_OUTCOME, LABEL_OUTCOME_MESSAGE
from ccs.v1 import resources_pb2 as pb

from .actions import Action, CreateContainer, DeleteContainer, MarkFinished, SetDesired, SetNodeState
from .errors import PlanError


def apply_actions(
    containers: Sequence[pb.Container],
    actions: Sequence[Action],
    service: pb.Service,
    now: datetime,
    new_id: Callable[[CreateContainer], str],
) -> list[pb.Container]:
    """Return new container records with ``actions`` applied; the inputs are not modified.

    ``SetNodeState`` concerns a node record and is skipped here. New containers start with an empty
    status, as the applier writes them (the agent reports status later).
    """
    by_id: dict[str, pb.Container] = {}
    for c in containers:
        copy = pb.Container()
        copy.CopyFrom(c)
        by_id[c.meta.id] = copy
    for action in actions:
        match action:
            case CreateContainer():
                created = _create(action, service, now, new_id(action))
                if created.meta.id in by_id:
                    raise PlanError(f"new_id: container id {created.meta.id!r} is already taken")
                by_id[created.meta.id] = created
            case SetDesired(container=cid, desired_state=state, labels=labels):
                target = _get(by_id, cid)
                target.desired_state = state
                target.meta.labels.update(dict(labels))
            case MarkFinished(container=cid, outcome=result, message=message):
                target = _get(by_id, cid)
                target.desired_state = pb.DESIRED_STATE_STOPPED
                target.meta.labels[LABEL_OUTCOME] = result
                target.meta.labels[LABEL_OUTCOME_MESSAGE] = message
            case DeleteContainer(container=cid):
                _get(by_id, cid)
                del by_id[cid]
            case SetNodeState():
                pass
    return list(by_id.values())


def _get(by_id: dict[str, pb.Container], cid: str) -> pb.Container:
    try:
        return by_id[cid]
    except KeyError:
        raise PlanError(f"action names container {cid!r}, which is not among the records") from None


def _create(action: CreateContainer, service: pb.Service, now: datetime, cid: str) -> pb.Container:
    c = pb.Container(
        cluster=service.cluster,
        application=service.application,
        service=action.service,
        node=action.node or "",
        slot=action.slot,
        spec_generation=action.spec_generation,
        app_revision=action.app_revision,
        desired_state=pb.DESIRED_STATE_RUNNING,
        spec=service.spec,
    )
    c.meta.id = cid
    c.meta.name = cid
    c.meta.created_at.FromDatetime(now)
    c.meta.labels.update(dict(action.labels))
    return c
