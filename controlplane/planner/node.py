"""``plan_node``: notice dead nodes and move their containers away, safely.

Timeline for a node whose agent stops heartbeating (all derived from when it was last seen and
``now``, so the plan is pure and the reconciler just requeues at ``requeue_after``):

1. ``last_seen + deadline`` passes (``deadline``: by default ``missed_heartbeats * heartbeat_period``):
   the node is marked DOWN. Its
   containers still count for their services: a short partition must not double a service.
2. ``down_grace`` later: each container that should run there is set to desired REMOVED, unless
   its service waits for its node (below). The record
   stays, so that the agent removes the container if the node comes back; the service planner no
   longer counts it and creates a replacement, which the scheduler places elsewhere.
3. The node heartbeats again: the dispatcher marks it READY (the dispatcher, not this planner, owns
   READY since it sees the session). Nothing is planned here for the containers it left behind: their
   records are still there, desired REMOVED, so the complete set the dispatcher sends the returning
   agent when its session opens carries them, and the agent removes them at once. The cluster
   never runs more replicas than desired for longer than it takes the agent to reconnect.

Where ``last_seen`` comes from: the caller says (``last_seen=``); without it, the record's
``last_heartbeat`` (or its creation). The reconciler derives it from the nodes' liveness keys
(:mod:`controlplane.dispatcher.liveness`): heartbeats stay in the memory of the API replica that
takes them, and only the presence of a key "a live replica heard this node within the deadline"
is in etcd; a node whose last key went at ``t`` was last heard at about ``t - deadline``
(:mod:`controlplane.reconcile.node_pass`).

A leader judges only what it could have seen. Heartbeats reach etcd through the API servers, so
while no server runs (an outage, a restart) or before a new leader has watched for long, an old
``last_heartbeat`` says nothing about the node: its agent may be fine and merely waiting to
reconnect. ``leading_since`` (when this leader started leading) is therefore the earliest moment
silence can be counted from: the timeline above starts at ``max(last_heartbeat, leading_since)``, so
after any start or leader change every node gets its full heartbeat timeout and ``down_grace``
again, and a healthy node's containers are never rescheduled because of the control plane's own
outage. ``reconnect_floor`` adds a floor to that: after a leader starts, no node is declared DOWN
sooner than ``leading_since + reconnect_floor``, whatever the deadline, so agents coming back
from an outage (backing off up to 2 s between tries, then opening a session) have time to.

Draining is done by the service planner (start the replacement first, then retire the old container
once the replacement is ready); this planner only reports progress in ``message``.

A container whose service waits for its node (``x-ccs.on_node_loss: wait``, the default for a
service with named volumes: see :mod:`.node_loss`) is never moved by this planner: it keeps its
slot on the DOWN node and runs there again when the node returns; the message counts them.

Many nodes at once: when more than half of a cluster's nodes (of at least
:data:`MASS_LOSS_MIN_NODES`) are unheard together, the likelier fault is the control plane's or
the network's (an overloaded API server that answered no heartbeat in time, a partition), not
that many hosts failing at the same moment; moving their containers would double the load on
what is left and, when the nodes come back, remove everything that was moved. So nodes are
still marked DOWN, but their containers are held (``hold``, from :func:`mass_loss_hold`) until
fewer than half are unheard; then the normal timeline applies. Kubernetes' node lifecycle
controller does the same above 55% unhealthy nodes in a zone. (Issue 15's hollow benchmark:
330 of 500 nodes went unheard within 2 s while the server was saturated, and 8,000 containers
were placed again.)

Containers are always rescheduled, never merely unassigned: a container that an unreachable agent
may already be running cannot safely be moved by clearing its node, so every move goes through a new
record and an explicit removal of the old one.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from ccs.v1 import resources_pb2 as pb

from .actions import Action, SetDesired, SetNodeState
from .containers import desired, is_gone, node_is_draining, require_aware, timestamp
from .errors import PlanError
from .node_loss import waits_for_its_node
from .restart import format_duration

DEFAULT_MISSED_HEARTBEATS = 3
LIVENESS_MISSED_HEARTBEATS = 2
"""Heartbeats an API replica lets a node miss before it stops vouching for it (liveness keys)."""
LIVENESS_SLACK = timedelta(seconds=1)
"""Added to the missed heartbeats: the agent's period runs from the answer to its last call, so
under load a heartbeat arrives a little after ``period`` (the call's own time)."""
RECONNECT_FLOOR = timedelta(seconds=10)
"""After a leader starts, the least time agents get to reconnect before any node is DOWN (five of
their longest backoffs, 2 s, plus a session to open)."""


def liveness_deadline(heartbeat_period: timedelta) -> timedelta:
    """How long a node may go unheard before no replica vouches for it: 2 missed heartbeats and
    :data:`LIVENESS_SLACK` (11 s at the default 5 s period). Two, not Swarm's three: an agent
    whose heartbeat call fails ends its session and reconnects at once, so a live agent is not
    silent for two whole periods, and the node-loss figure (issue 15: <= 20 s from the host's
    death to its replacement running) has room for the down grace and the restart."""
    return heartbeat_period * LIVENESS_MISSED_HEARTBEATS + LIVENESS_SLACK


@dataclass(frozen=True)
class NodePlan:
    """What to write for one node, and when to look again."""

    actions: tuple[Action, ...]
    requeue_after: float | None
    message: str
    held: int = 0  # containers that would have moved but are held (mass_loss_hold)


MASS_LOSS_MIN_NODES = 10
"""Clusters smaller than this always reschedule (losing most of 3 hosts is a plausible failure)."""
HOLD_RECHECK = 2.0
"""Seconds between looks at a node whose containers are held (see the module docstring)."""


def mass_loss_hold(unheard: int, nodes: int) -> str:
    """Why rescheduling is held ("" when it is not): more than half of ``nodes`` (at least
    :data:`MASS_LOSS_MIN_NODES`) are ``unheard``."""
    if nodes < MASS_LOSS_MIN_NODES or unheard * 2 <= nodes:
        return ""
    return (f"{unheard} of {nodes} nodes are unheard at once: a control-plane or network fault is likelier "
            "than that many failed hosts, so no container moves until fewer than half are unheard")


def plan_node(
    node: pb.Node,
    containers_on_node: Sequence[pb.Container],
    now: datetime,
    heartbeat_period: timedelta,
    down_grace: timedelta,
    *,
    missed_heartbeats: int = DEFAULT_MISSED_HEARTBEATS,
    leading_since: datetime | None = None,
    last_seen: datetime | None = None,
    deadline: timedelta | None = None,
    reconnect_floor: timedelta = timedelta(0),
    hold: str = "",
) -> NodePlan:
    """Plan one node. ``containers_on_node``: every container record whose ``node`` is this node's id.

    A node that never heartbeated is judged from its ``meta.created_at``; with neither timestamp it
    is treated as silent since forever. ``leading_since``: when the calling leader started leading;
    silence before it is not counted (see the module docstring). ``None`` counts all silence (for
    callers that are not a leader, and tests of the plain timeline). ``last_seen``: when the node
    was last heard (default: its record's ``last_heartbeat``); ``deadline``: the silence that makes
    it DOWN (default ``missed_heartbeats * heartbeat_period``); ``reconnect_floor``: see the module
    docstring; ``hold``: why containers must not move now (:func:`mass_loss_hold`; "" lets them).
    Raises ``PlanError`` for invalid input.
    """
    require_aware(now)
    if leading_since is not None:
        require_aware(leading_since, "leading_since")
    node_id = str(node.meta.id)
    _validate(node_id, containers_on_node, heartbeat_period, down_grace, missed_heartbeats)

    if last_seen is None:
        last_seen = timestamp(node.status.last_heartbeat) or timestamp(node.meta.created_at)
    else:
        require_aware(last_seen, "last_seen")
    watched_from = _silence_counted_from(last_seen, leading_since)
    down_at = node_down_at(node, heartbeat_period, missed_heartbeats=missed_heartbeats,
                           leading_since=leading_since, last_seen=last_seen, deadline=deadline,
                           reconnect_floor=reconnect_floor)

    actions: list[Action] = []
    if down_at is not None and now < down_at:
        return NodePlan((), (down_at - now).total_seconds(), _ready_message(node, containers_on_node))

    silent = _silence(now, last_seen, watched_from, timestamp(node.status.last_heartbeat))
    if deadline is None:
        why = f"{silent} ({missed_heartbeats} heartbeats of {format_duration(heartbeat_period)} missed)"
    else:
        why = f"{silent} (no API replica heard it for the {format_duration(deadline)} deadline)"
    if node.status.state != pb.NODE_STATE_DOWN:
        actions.append(SetNodeState(node_id, pb.NODE_STATE_DOWN, why))

    running = sorted(
        (c for c in containers_on_node if desired(c) == pb.DESIRED_STATE_RUNNING),
        key=lambda c: c.meta.id,
    )
    movable = [c for c in running if not waits_for_its_node(c.spec)]
    staying = _staying_note(len(running) - len(movable))
    reschedule_at = down_at + down_grace if down_at else None
    if reschedule_at is not None and now < reschedule_at:
        wait = (reschedule_at - now).total_seconds()
        note = f"; {len(movable)} container(s) move in {wait:.0f}s" if movable else ""
        return NodePlan(tuple(actions), wait, f"down: {why}{note}{staying}")

    if hold and movable:
        return NodePlan(tuple(actions), HOLD_RECHECK,
                        f"down: {why}; {len(movable)} container(s) held: {hold}{staying}", held=len(movable))
    reason = f"node {node_id} down: {why}; rescheduled after {format_duration(down_grace)} grace"
    actions.extend(SetDesired(c.meta.id, pb.DESIRED_STATE_REMOVED, reason) for c in movable)
    moved = f"; {len(movable)} container(s) rescheduled" if movable else ""
    return NodePlan(tuple(actions), None, f"down: {why}{moved}{staying}")


def node_down_at(
    node: pb.Node,
    heartbeat_period: timedelta,
    *,
    missed_heartbeats: int = DEFAULT_MISSED_HEARTBEATS,
    leading_since: datetime | None = None,
    last_seen: datetime | None = None,
    deadline: timedelta | None = None,
    reconnect_floor: timedelta = timedelta(0),
) -> datetime | None:
    """When the node counts as down if it stays silent (None: silent since forever). Until then
    :func:`plan_node` plans nothing for it, whatever its containers: a caller may skip gathering
    them (a pass over 2,000 healthy nodes need not list 100,000 containers). The keywords are
    :func:`plan_node`'s."""
    if last_seen is None:
        last_seen = timestamp(node.status.last_heartbeat) or timestamp(node.meta.created_at)
    watched_from = _silence_counted_from(last_seen, leading_since)
    if watched_from is None:
        return None
    down_at = watched_from + (deadline if deadline is not None else heartbeat_period * missed_heartbeats)
    if leading_since is not None:
        down_at = max(down_at, leading_since + reconnect_floor)
    return down_at


def _staying_note(count: int) -> str:
    if not count:
        return ""
    return f"; {count} container(s) wait for the node to return (x-ccs.on_node_loss: wait)"


def _silence_counted_from(last_seen: datetime | None, leading_since: datetime | None) -> datetime | None:
    """The later of the last sign of life and the start of this leadership (None: since forever)."""
    if leading_since is None:
        return last_seen
    if last_seen is None:
        return leading_since
    return max(last_seen, leading_since)


def _silence(
    now: datetime, last_seen: datetime | None, watched_from: datetime | None, heartbeat: datetime | None
) -> str:
    if watched_from is None:
        return "never heartbeated"
    if last_seen is not None and watched_from == last_seen:
        return f"no heartbeat for {format_duration(now - last_seen)}"
    before = f"last one {format_duration(now - heartbeat)} ago" if heartbeat else "never heartbeated"
    return f"no heartbeat for {format_duration(now - watched_from)} since this leader started ({before})"


def _ready_message(node: pb.Node, containers: Sequence[pb.Container]) -> str:
    if node_is_draining(node):
        left = sum(1 for c in containers if not is_gone(c))
        return f"draining: {left} container(s) left" if left else "drained"
    return "ok"


def _validate(
    node_id: str,
    containers: Sequence[pb.Container],
    heartbeat_period: timedelta,
    down_grace: timedelta,
    missed_heartbeats: int,
) -> None:
    if heartbeat_period <= timedelta(0):
        raise PlanError(f"heartbeat_period must be positive (got {heartbeat_period})")
    if down_grace < timedelta(0):
        raise PlanError(f"down_grace must not be negative (got {down_grace})")
    if missed_heartbeats < 1:
        raise PlanError(f"missed_heartbeats must be at least 1 (got {missed_heartbeats})")
    strays = [c.meta.id for c in containers if c.node != node_id]
    if strays:
        raise PlanError(f"containers_on_node: {', '.join(strays)} are not on node {node_id!r}")
