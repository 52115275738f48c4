"""The node part of a cluster pass: mark silent nodes down and move their containers away.

:func:`~controlplane.planner.plan_node` decides (from when the node was last heard, ``now`` and
``leading_since``, so it is pure); this module turns its actions into guarded writes of the
pass: the node's new state with a warning event, and containers' new desired state (through
:meth:`ClusterPass.put_container`, so the services planned later in the pass see them) with an
event each saying why. A node whose record does not decode is held, not planned.

Fencing is one unit: the node's raised ``fence_epoch`` with its ``NodeFenced`` event and the
containers stamped with that epoch are bound to the node's write (:meth:`Writes.bind`), so they
commit in one transaction or not at all (a heartbeat that changed the node first makes the
whole unit conflict and the pass replans). To keep that transaction within etcd's limit, one
pass fences at most what fits in ``MAX_OPS`` (each container: its write, its event, the
subnet keys it needs); the rest are given up by the next pass, under the next epoch.

The replacements of the containers given up are not planned in the same pass (the services are
``deferred`` to the next one): they would commit in other transactions than the fencing unit,
and when that unit meets a conflict (the node's agent heartbeats again) the replacements landed
while the originals still ran: more live containers than replicas (issue 15's hollow benchmark
saw 502 for 500). The next pass plans from a cache that has seen the unit commit, or not.

Liveness (when the pass has ``absent_since``, as the orchestrator's passes do): a node is alive
while any API replica holds its alive key (:mod:`controlplane.dispatcher.liveness`), and such a
node is not planned at all (READY is the dispatcher's to write, when the session opens or a
heartbeat finds the node otherwise). A replica deletes its key once the node has been unheard for
:func:`~controlplane.planner.liveness_deadline`, so a node whose last key went at ``t`` was last
heard at about ``t - deadline``: that is the ``last_seen`` given to the planner, whose timeline
then makes it DOWN at ``t`` and reschedules ``down_grace`` later. A node without a key whose
going this leader did not see (it had none when the leadership began, or it registered and never
opened a session) is judged from its record's ``last_heartbeat`` (set when its last session
opened), never sooner than :data:`~controlplane.planner.RECONNECT_FLOOR` after the leadership
began.

Many unheard at once: with liveness keys, the pass counts the cluster's nodes that have none;
above half (:func:`~controlplane.planner.mass_loss_hold`) the DOWN nodes keep their containers
until fewer are unheard (logged once per pass that holds some).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

import structlog

from ccs.v1 import resources_pb2 as pb
from controlplane.planner import (
    RECONNECT_FLOOR,
    SetDesired,
    SetNodeState,
    event_of,
    liveness_deadline,
    mass_loss_hold,
    node_down_at,
    plan_node,
)
from controlplane.reconcile.cluster_pass import ClusterPass
from controlplane.reconcile.writes import MAX_OPS
from controlplane.store import keys


@dataclass(frozen=True)
class _Heard:
    """The planner's liveness keywords for one node (defaults: judge it from its record)."""

    last_seen: datetime | None = None
    deadline: timedelta | None = None
    reconnect_floor: timedelta = timedelta(0)


def _heard(p: ClusterPass, name: str) -> _Heard | None:
    """How to judge node ``name``; None: it is alive, nothing to plan."""
    if p.absent_since is None:
        return _Heard()
    if p.state.alive.get(name):
        return None
    deadline = liveness_deadline(p.heartbeat_period)
    gone = p.absent_since.get(name)
    return _Heard(gone - deadline if gone is not None else None, deadline, RECONNECT_FLOOR)


log = structlog.get_logger("ccs.nodes")


def plan_nodes(p: ClusterPass) -> None:
    hold = ""
    if p.absent_since is not None:
        unheard = sum(1 for name in p.state.nodes if not p.state.alive.get(name))
        hold = mass_loss_hold(unheard, len(p.state.nodes))
    held = 0
    for name, node in sorted(p.state.nodes.items()):
        if name in p.held.nodes:
            continue
        heard = _heard(p, name)
        if heard is None:
            continue
        down_at = node_down_at(node, p.heartbeat_period, leading_since=p.leading_since, last_seen=heard.last_seen,
                               deadline=heard.deadline, reconnect_floor=heard.reconnect_floor)
        if down_at is not None and p.now < down_at:
            # Heard from in time: plan_node would plan nothing (see node_down_at), so neither the
            # node's copy nor its containers are needed. A pass costs O(nodes) here, not O(cluster).
            p.requeue.append((down_at - p.now).total_seconds())
            continue
        as_planned = pb.Node()
        as_planned.CopyFrom(node)
        as_planned.meta.id = name  # containers name their node by name
        on_node = [c for c in p.state.containers_on(name)]
        plan = plan_node(as_planned, on_node, p.now, p.heartbeat_period, p.down_grace,
                         leading_since=p.leading_since, last_seen=heard.last_seen, deadline=heard.deadline,
                         reconnect_floor=heard.reconnect_floor, hold=hold)
        if plan.requeue_after is not None:
            p.requeue.append(plan.requeue_after)
        if plan.held:
            held += 1
        node_key = keys.node(p.cluster, name)
        updated = pb.Node()
        updated.CopyFrom(node)
        down_message = ""
        fenced: list[str] = []
        # Budget of the fencing unit: the node's write with its two events, then per container.
        ops, guards, needed = 3, 1, set[str]()
        for action in plan.actions:
            if isinstance(action, SetNodeState) and node.status.state != action.state:
                updated.status.state = action.state
                updated.status.message = down_message = action.message
            elif isinstance(action, SetDesired):
                key = p.by_id.get(action.container)
                c = p.container(key) if key else None
                if key is not None and c is not None and c.desired_state != action.desired_state:
                    # Fencing: the node's epoch goes up once per pass that gives its containers up,
                    # and each one given up carries it (the agent stops those first on return).
                    moved = pb.Container()
                    moved.CopyFrom(c)
                    moved.desired_state = action.desired_state
                    moved.fence_epoch = node.fence_epoch + 1
                    needs = set(p.subnets.needs_of(moved)) - needed
                    if ops + 2 > MAX_OPS or guards + 1 + len(needs) > MAX_OPS:
                        continue  # the unit is full: the next pass gives this one up
                    ops, guards = ops + 2, guards + 1 + len(needs)
                    needed |= needs
                    updated.fence_epoch = moved.fence_epoch
                    fenced.append(keys.container(p.cluster, *key))
                    p.put_container(key, moved, p.writes)
                    p.deferred.add((key[0], key[1]))
                    if (ev := event_of(action, c)) is not None:
                        p.container_event(key, ev, p.writes)
        if updated == node:
            continue
        p.writes.put(node_key, updated, node.meta.resource_version, "node", name)
        for container_key in fenced:
            p.writes.bind(container_key, node_key)
        if down_message:
            p.event_with(p.writes, node_key, "node", name, "NodeDown", down_message, warning=True)
        if fenced:
            p.event_with(p.writes, node_key, "node", name, "NodeFenced",
                         f"fence epoch {updated.fence_epoch}: {len(fenced)} container(s) rescheduled away; if the "
                         "node comes back, its agent stops them before it starts anything", warning=True)
    if held:
        log.warning("rescheduling held", cluster=p.cluster, nodes=held, why=hold)
