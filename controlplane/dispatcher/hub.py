"""Per-node assignment streams built from the informer cache."""

from __future__ import annotations

import asyncio
from collections import defaultdict
from dataclasses import dataclass, field

from ccs.v1 import agent_pb2
from ccs.v1 import resources_pb2 as pb
from controlplane.informer import Change, Informer
from controlplane.routing import routing_table, table_version

UPDATE = agent_pb2.Assignment.ACTION_UPDATE
REMOVE = agent_pb2.Assignment.ACTION_REMOVE


@dataclass(eq=False)
class NodeSession:
    cluster: str
    node: str
    version: int
    queue: asyncio.Queue[agent_pb2.SessionMessage | None] = field(default_factory=asyncio.Queue)


def _assignment_view(c: pb.Container) -> pb.Container:
    """What the agent acts on: everything but the status it reports itself."""
    view = pb.Container()
    view.CopyFrom(c)
    view.ClearField("status")
    view.meta.resource_version = 0
    view.meta.ClearField("updated_at")
    return view


def _matters_to_agent(old: pb.Container | None, new: pb.Container | None) -> bool:
    if old is None or new is None:
        return True
    return _assignment_view(old) != _assignment_view(new)


class AssignmentHub:
    def __init__(self, informer: Informer, heartbeat_period_ms: int) -> None:
        self.informer = informer
        self.heartbeat_period_ms = heartbeat_period_ms
        self._sessions: dict[tuple[str, str], set[NodeSession]] = defaultdict(set)
        self._routing: dict[str, pb.RoutingTable] = {}
        informer.subscribe(self._on_changes, self._on_resync)

    def routing(self, cluster: str) -> pb.RoutingTable:
        """The cluster's current routing table (computed from the cache, then kept current)."""
        table = self._routing.get(cluster)
        if table is None:
            table = self._compute_routing(cluster)
            self._routing[cluster] = table
        return table

    def _compute_routing(self, cluster: str) -> pb.RoutingTable:
        state = self.informer.clusters.get(cluster)
        if state is None:
            return pb.RoutingTable(cluster=cluster)
        if not any(svc.spec.routes for svc in state.services.values()):
            empty = pb.RoutingTable(cluster=cluster)
            empty.version = table_version(empty)
            return empty
        latest = {app: state.latest_release(app) for app in state.apps}
        return routing_table(cluster, state.services, state.containers.values(), latest)

    def connected(self, cluster: str, node: str) -> bool:
        return bool(self._sessions.get((cluster, node)))

    def open(self, cluster: str, node: str) -> tuple[NodeSession, agent_pb2.SessionMessage]:
        """Register a session and build its complete set, atomically w.r.t. cache updates."""
        version = self.informer.revision
        session = NodeSession(cluster, node, version)
        state = self.informer.clusters.get(cluster)
        assignments = [
            agent_pb2.Assignment(action=UPDATE, container=_assignment_view(c))
            for c in (state.containers_on(node) if state else [])
        ]
        self._sessions[(cluster, node)].add(session)
        msg = agent_pb2.SessionMessage(
            type=agent_pb2.SessionMessage.TYPE_COMPLETE,
            version=version,
            assignments=assignments,
            heartbeat_period_ms=self.heartbeat_period_ms,
            routing=self.routing(cluster),
        )
        return session, msg

    def close(self, session: NodeSession) -> None:
        sessions = self._sessions.get((session.cluster, session.node))
        if sessions is not None:
            sessions.discard(session)
            if not sessions:
                del self._sessions[(session.cluster, session.node)]

    def disconnect(self, cluster: str, node: str) -> None:
        for s in list(self._sessions.get((cluster, node), ())):
            s.queue.put_nowait(None)

    def _on_resync(self) -> None:
        # The cache re-listed: chains are broken; make every agent reconnect for a complete set.
        for sessions in list(self._sessions.values()):
            for s in sessions:
                s.queue.put_nowait(None)

    def _on_changes(self, changes: list[Change]) -> None:
        per_node: dict[tuple[str, str], list[agent_pb2.Assignment]] = defaultdict(list)
        revision = 0
        routed: set[str] = set()
        for ch in changes:
            revision = ch.revision
            if ch.kind in ("service", "container", "release", "application"):
                routed.add(ch.cluster)
            if ch.kind == "node" and ch.new is None:
                self.disconnect(ch.cluster, ch.key[0])  # removed: end its session
                continue
            if ch.kind != "container":
                continue
            old: pb.Container | None = ch.old
            new: pb.Container | None = ch.new
            old_node = old.node if old is not None else ""
            new_node = new.node if new is not None else ""
            if old_node and old_node != new_node and old is not None:
                per_node[(ch.cluster, old_node)].append(
                    agent_pb2.Assignment(action=REMOVE, container=_assignment_view(old))
                )
            if new_node and new is not None and (old_node != new_node or _matters_to_agent(old, new)):
                per_node[(ch.cluster, new_node)].append(
                    agent_pb2.Assignment(action=UPDATE, container=_assignment_view(new))
                )
        new_routing: dict[str, pb.RoutingTable] = {}
        for cluster in routed:
            before = self._routing.get(cluster)
            table = self._compute_routing(cluster)
            self._routing[cluster] = table
            if before is None or before.version != table.version:
                new_routing[cluster] = table
        targets = set(per_node) | {k for k in self._sessions if k[0] in new_routing}
        for key in targets:
            assignments = per_node.get(key, [])
            changed_table = new_routing.get(key[0])
            for s in self._sessions.get(key, ()):
                msg = agent_pb2.SessionMessage(
                    type=agent_pb2.SessionMessage.TYPE_INCREMENTAL,
                    base_version=s.version,
                    version=revision,
                    assignments=assignments,
                    heartbeat_period_ms=self.heartbeat_period_ms,
                )
                if changed_table is not None:
                    msg.routing.CopyFrom(changed_table)
                s.version = revision
                s.queue.put_nowait(msg)
