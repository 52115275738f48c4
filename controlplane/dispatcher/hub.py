"""Per-node assignment streams built from the informer cache.

Besides its containers, a session carries two tables computed from the cache: the cluster's
routing table (the same for every node) and the node's network map (its own view of the
application networks it has a block of, :mod:`controlplane.netmap`). Both go in the complete
set when a session opens (the map in full, or as a delta on the version the agent says it
still holds when this hub queued that version to the node lately: see
:meth:`AssignmentHub.open`), then in an incremental message only when their content-hash
version changes for that node: the routing table in full, the map as the
networks that changed and the keys that went away (a delta chained on the version the agent
holds, :mod:`controlplane.dispatcher.map_sender`), so a change costs the change, not the map.

Cost of keeping network maps current: the hub keeps one :class:`NetworkMaps` per cluster with
at least one open session (built with one scan of the cluster's blocks and services when its
first session opens, dropped when its last closes or the cache re-lists). Each change costs
O(1) to read; a batch then costs, for every connected node with a block of an application the
batch changed, one assembly of its map (a dict of the encoded networks on that node, each
with its digest, and a version computed from the digests), a comparison of those digests with
what its session holds, and a parse of the networks that changed (once per distinct delta),
plus one recomputation per changed application (O(its services, containers and blocks)).
Nodes without a session, and applications no connected node takes part in, cost nothing.

A node's map holds every address of the applications it has a block of, so its size grows
with the cluster, and a deploy changes something every few milliseconds: rebuilding and
sending every concerned node's map per watch batch took most of the server's time in issue
15's hollow benchmark (200 nodes, 10,000 containers), and whole maps made a flush ~580 MB at
500 nodes (now deltas: the changed networks only). With ``map_delay`` (the server's hub
uses :data:`MAP_DELAY`) the maps of a burst of batches are settled and sent once, in a map-only
incremental message, ``map_delay`` after the first batch of the burst, or as long after as the
last such flush took (so the flushes never take more than about half the event loop). The
agent's fabric applies maps "latest wins" in the background anyway; a container's assignment is never
delayed, only the map that tells the other nodes its address.

A flush is a task that gives the event loop back every :data:`FLUSH_SLICE` seconds: at 500
nodes with 40 applications each, every node's map holds the whole cluster's addresses, and one
synchronous flush held the loop for seconds, so heartbeats were answered past the agents'
deadline and their sessions reopened (issue 15: ~2,000 session opens a minute). A map's
message is parsed once (a complete map per version, a delta per base and version) and copied to
every session that gets it (in that benchmark every node has the same map, and all move from
one version to the next together).
Changes seen while a flush runs are flushed after it.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter, defaultdict
from collections.abc import Mapping
from dataclasses import dataclass, field

from ccs.v1 import agent_pb2
from ccs.v1 import resources_pb2 as pb
from controlplane.informer import Change, ClusterState, Informer
from controlplane.netmap import NetworkMaps, NodeMap
from controlplane.netmap.delta import Key
from controlplane.routing import routing_table, table_version

from .map_sender import MapHeld, MapMessages, QueuedMessage, takes_deltas

UPDATE = agent_pb2.Assignment.ACTION_UPDATE
REMOVE = agent_pb2.Assignment.ACTION_REMOVE
MAP_DELAY = 0.1
"""Seconds the server's hub gathers changes before it sends the network maps they changed."""
FLUSH_SLICE = 0.02
"""Seconds of work a map flush does before it lets the rest of the event loop run."""
MAP_BYTES_PER_SECOND = 50_000_000
"""The network-map bytes a flush may send per second, on average: the next flush waits for the
last one's bytes at this rate. Each node's map is O(cluster) (issue 15: 1.2 MB per node at 500
nodes and 20,000 containers, 580 MB per flush), and agents' heartbeat and status calls share
their connection with the session that carries it: unpaced, those calls waited past their
deadline behind the maps, and the sessions reopened. Maps are "latest wins", so a slower pace
costs only how soon an address reaches other nodes; since maps go as deltas (the changed
networks) the bytes, and so the pause, are those of the changes."""


@dataclass(eq=False)
class NodeSession:
    cluster: str
    node: str
    version: int
    queue: asyncio.Queue[QueuedMessage | None] = field(default_factory=asyncio.Queue)
    netmap: MapHeld = field(default_factory=MapHeld)  # the agent's map once it read the queue
    # The last queued message while it is map-only and not yet taken: a newer map replaces its
    # map in place (maps are "latest wins"), so a slow agent's queue holds one map, not one per
    # flush (issue 15: at 500 nodes each map holds the whole cluster's addresses). The
    # replacement is a delta from what the agent held before that message: `before_open`.
    open_map: QueuedMessage | None = None
    before_open: tuple[int, Mapping[Key, int]] = (0, {})

    def put(self, msg: QueuedMessage, *, map_only: bool = False) -> None:
        self.queue.put_nowait(msg)
        self.open_map = msg if map_only else None

    def end(self) -> None:
        """End the stream (the servicer stops after the messages queued before)."""
        self.queue.put_nowait(None)
        self.open_map = None

    async def next(self) -> QueuedMessage | None:
        """The next message to send (None: the stream ends)."""
        return self._taken(await self.queue.get())

    def next_nowait(self) -> QueuedMessage | None:
        return self._taken(self.queue.get_nowait())

    def _taken(self, msg: QueuedMessage | None) -> QueuedMessage | None:
        if msg is not None and msg is self.open_map:
            self.open_map = None
        return msg


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
    def __init__(self, informer: Informer, heartbeat_period_ms: int, *, map_delay: float = 0.0) -> None:
        self.informer = informer
        self.heartbeat_period_ms = heartbeat_period_ms
        # 0: maps go out with the batch that changed them (unit tests of the content); > 0: see
        # the module docstring.
        self.map_delay = map_delay
        self._maps_pending: asyncio.TimerHandle | None = None
        self._flushing: asyncio.Task[None] | None = None
        self._flush_again = False  # changes came in while a flush ran
        self._messages = MapMessages()
        self._last_flush_seconds = 0.0
        self._last_flush_bytes = 0
        self._last_revision = 0
        self._sessions: dict[tuple[str, str], set[NodeSession]] = defaultdict(set)
        self._routing: dict[str, pb.RoutingTable] = {}
        # Per cluster with open sessions: the state the maps were built from, and the maps.
        self._netmaps: dict[str, tuple[ClusterState, NetworkMaps]] = {}
        self._open_in: Counter[str] = Counter()  # cluster -> open sessions
        # (cluster, node) -> map versions the node's last closed session queued, with digests.
        self._closed_maps: dict[tuple[str, str], Mapping[int, Mapping[Key, int]]] = {}
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

    def network_map(self, cluster: str, node: str) -> agent_pb2.NetworkMap:
        """``node``'s current network map, complete (the caller copies it: it is shared)."""
        return self._messages.complete(self._node_map(cluster, node))

    def _node_map(self, cluster: str, node: str) -> NodeMap:
        """``node``'s current map as parts (empty, with its version, outside any known cluster)."""
        found = self._maps(cluster)
        if found is None:
            return NodeMap.of(cluster, "", {})
        state, maps = found
        return maps.parts_for(state, node)

    def _deltas(self, cluster: str, node: str) -> bool:
        """Whether ``node``'s agent takes map deltas (see :mod:`.map_sender`)."""
        state = self.informer.clusters.get(cluster)
        return takes_deltas(state.nodes.get(node) if state is not None else None)

    def _maps(self, cluster: str) -> tuple[ClusterState, NetworkMaps] | None:
        """The cluster's maps, built afresh if the cache holds another state object for it
        (re-listed, or the cluster was deleted and made again)."""
        state = self.informer.clusters.get(cluster)
        if state is None:
            self._netmaps.pop(cluster, None)
            return None
        found = self._netmaps.get(cluster)
        if found is None or found[0] is not state:
            found = self._netmaps[cluster] = (state, NetworkMaps(state))
        return found

    def connected_nodes(self) -> int:
        """Nodes with at least one open session on this server (the metric ``ccs_agents_connected``)."""
        return len(self._sessions)

    def connected(self, cluster: str, node: str) -> bool:
        return bool(self._sessions.get((cluster, node)))

    def open(self, cluster: str, node: str, held_map_version: int = 0
             ) -> tuple[NodeSession, QueuedMessage]:
        """Register a session and build its complete set, atomically w.r.t. cache updates.

        ``held_map_version``: the map version the agent says it holds (0: none). When this hub
        queued that version to the node lately (:meth:`_known_map`), the session opens with a
        delta on top of it (no map if it is current); else with the complete map."""
        version = self.informer.revision
        session = NodeSession(cluster, node, version)
        state = self.informer.clusters.get(cluster)
        assignments = [
            agent_pb2.Assignment(action=UPDATE, container=_assignment_view(c))
            for c in (state.containers_on(node) if state else [])
        ]
        known = self._known_map(cluster, node, held_map_version)
        self._sessions[(cluster, node)].add(session)
        self._open_in[cluster] += 1
        target = self._node_map(cluster, node)
        msg = QueuedMessage(agent_pb2.SessionMessage(
            type=agent_pb2.SessionMessage.TYPE_COMPLETE,
            version=version,
            assignments=assignments,
            heartbeat_period_ms=self.heartbeat_period_ms,
            routing=self.routing(cluster),
        ))
        # Only an agent that applies deltas names a version (older ones leave the field 0).
        self._messages.fill(msg, (held_map_version, known) if known is not None else (0, {}), target,
                            deltas=known is not None)
        session.netmap.take(target)
        return session, msg

    def _known_map(self, cluster: str, node: str, version: int) -> Mapping[Key, int] | None:
        """The digests of ``node``'s map ``version``, if one of its sessions (open, or the last
        closed) queued that version lately; None otherwise (or for 0)."""
        if not version:
            return None
        for s in self._sessions.get((cluster, node), ()):
            found = s.netmap.recent.get(version)
            if found is not None:
                return found
        return self._closed_maps.get((cluster, node), {}).get(version)

    def close(self, session: NodeSession) -> None:
        sessions = self._sessions.get((session.cluster, session.node))
        if sessions is not None and session in sessions:
            # What it queued lately, for the node's next session (see `open`), while the node is.
            state = self.informer.clusters.get(session.cluster)
            if state is not None and session.node in state.nodes:
                self._closed_maps[(session.cluster, session.node)] = session.netmap.recent
            sessions.discard(session)
            if not sessions:
                del self._sessions[(session.cluster, session.node)]
            self._open_in[session.cluster] -= 1
            if self._open_in[session.cluster] <= 0:
                del self._open_in[session.cluster]
                self._netmaps.pop(session.cluster, None)  # no one to compute maps for

    def disconnect(self, cluster: str, node: str) -> None:
        for s in list(self._sessions.get((cluster, node), ())):
            s.end()

    def _on_resync(self) -> None:
        # The cache re-listed: chains are broken; make every agent reconnect for a complete set,
        # computed from the new cache (not from tables derived from the old one).
        self._routing.clear()
        self._netmaps.clear()
        for sessions in list(self._sessions.values()):
            for s in sessions:
                s.end()

    def _on_changes(self, changes: list[Change]) -> None:
        per_node: dict[tuple[str, str], list[agent_pb2.Assignment]] = defaultdict(list)
        revision = 0
        routed: set[str] = set()
        for ch in changes:
            revision = ch.revision
            found = self._netmaps.get(ch.cluster)
            if found is not None:
                found[1].observe(found[0], ch.kind, ch.key, ch.old, ch.new)
            if ch.kind in ("service", "container", "release", "application"):
                routed.add(ch.cluster)
            if ch.kind == "node" and ch.new is None:
                self.disconnect(ch.cluster, ch.key[0])  # removed: end its session
                self._closed_maps.pop((ch.cluster, ch.key[0]), None)
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
        self._last_revision = max(self._last_revision, revision)
        new_maps: dict[tuple[str, str], NodeMap] = {}
        if self.map_delay <= 0:
            new_maps = self._changed_maps()
        elif self._netmaps and self._flushing is not None:
            self._flush_again = True
        elif self._netmaps and self._maps_pending is None:
            self._schedule_flush()
        targets = set(per_node) | {k for k in self._sessions if k[0] in new_routing} | set(new_maps)
        for key in targets:
            assignments = per_node.get(key, [])
            changed_table = new_routing.get(key[0])
            target = new_maps.get(key)
            deltas = target is not None and self._deltas(*key)
            for s in self._sessions.get(key, ()):
                map_changed = target is not None and target.version != s.netmap.version
                if not assignments and changed_table is None and not map_changed:
                    continue  # nothing new for this session: its chain stays where it is
                msg = QueuedMessage(agent_pb2.SessionMessage(
                    type=agent_pb2.SessionMessage.TYPE_INCREMENTAL,
                    base_version=s.version,
                    version=revision,
                    assignments=assignments,
                    heartbeat_period_ms=self.heartbeat_period_ms,
                ))
                if changed_table is not None:
                    msg.header.routing.CopyFrom(changed_table)
                if map_changed and target is not None:
                    self._messages.fill(msg, s.netmap.now(), target, deltas=deltas)
                    s.netmap.take(target)
                s.version = revision
                s.put(msg)

    def flush_delay(self) -> float:
        """Seconds from now to the next map flush: ``map_delay``, or as long as the last flush
        took, or its bytes at :data:`MAP_BYTES_PER_SECOND`, whichever is longest."""
        return max(self.map_delay, self._last_flush_seconds, self._last_flush_bytes / MAP_BYTES_PER_SECOND)

    def _schedule_flush(self) -> None:
        delay = self.flush_delay()
        self._maps_pending = asyncio.get_running_loop().call_later(delay, self._start_flush)

    def _start_flush(self) -> None:
        self._maps_pending = None
        self._flush_again = False
        self._flushing = asyncio.get_running_loop().create_task(self._flush_maps(), name="network-map-flush")

    async def _flush_maps(self) -> None:
        """Send the maps the changes since the last flush altered, each in a map-only message,
        in slices of :data:`FLUSH_SLICE` (see the module docstring)."""
        busy = 0.0
        sent = 0
        t0 = time.perf_counter()
        try:
            for cluster, state, maps, node in self._map_targets():
                if self.informer.clusters.get(cluster) is not state:
                    self._flush_again = True  # re-listed meanwhile: the next flush rebuilds
                    continue
                sessions = self._sessions.get((cluster, node))
                if not sessions:
                    continue
                target = maps.parts_for(state, node)
                deltas = self._deltas(cluster, node)
                for s in sessions:
                    if target.version == s.netmap.version:
                        continue
                    if s.open_map is not None:  # not sent yet: this map replaces its map
                        sent += self._messages.fill(s.open_map, s.before_open, target, deltas=deltas)
                        s.open_map.header.version = s.version = max(s.version, self._last_revision)
                        s.netmap.take(target)
                        continue
                    msg = QueuedMessage(agent_pb2.SessionMessage(
                        type=agent_pb2.SessionMessage.TYPE_INCREMENTAL,
                        base_version=s.version,
                        # Every assignment up to the last batch seen is already queued (batches
                        # are handled synchronously), so the chain may move on to it.
                        version=max(s.version, self._last_revision),
                        heartbeat_period_ms=self.heartbeat_period_ms,
                    ))
                    sent += self._messages.fill(msg, s.netmap.now(), target, deltas=deltas)
                    s.before_open = s.netmap.now()
                    s.netmap.take(target)
                    s.version = msg.header.version
                    s.put(msg, map_only=True)
                if time.perf_counter() - t0 >= FLUSH_SLICE:
                    busy += time.perf_counter() - t0
                    await asyncio.sleep(0)
                    t0 = time.perf_counter()
        finally:
            self._last_flush_seconds = busy + time.perf_counter() - t0
            self._last_flush_bytes = sent
            self._flushing = None
            if self._flush_again and self._netmaps and self._maps_pending is None:
                self._schedule_flush()

    def _map_targets(self) -> list[tuple[str, ClusterState, NetworkMaps, str]]:
        """Every connected node the last changes may concern, with its cluster's maps (settled)."""
        out: list[tuple[str, ClusterState, NetworkMaps, str]] = []
        for cluster, (state, maps) in list(self._netmaps.items()):
            nodes = maps.settle()
            if self.informer.clusters.get(cluster) is not state:
                found = self._maps(cluster)  # another state object: rebuild, check every session
                if found is None:
                    continue
                state, maps = found
                nodes = {node for (c, node) in self._sessions if c == cluster}
            out += [(cluster, state, maps, node) for node in sorted(nodes) if self._sessions.get((cluster, node))]
        return out

    def _changed_maps(self) -> dict[tuple[str, str], NodeMap]:
        """The current map of every connected node the last changes may concern."""
        return {(cluster, node): maps.parts_for(state, node) for cluster, state, maps, node in self._map_targets()}
