"""What of a node's network map goes into a session message: whole, or the networks that changed.

Split from :mod:`controlplane.dispatcher.hub` (which decides when maps go out) because the
hub had reached the size where one more concern made it hard to read, and because this part
has its own rule to get right: a session remembers what it queued of the map (the version and
each network's digest, :class:`MapHeld`), and a map-only message that is still unsent is
replaced in place ("latest wins"), so its replacement must be computed against what the agent
held *before* that message (``before_open``), not against what the message brought.

Why deltas (issue 15): each node's map is O(cluster) (1.2 MB at 500 nodes and 20,000
containers), and it was sent whole on every change: one flush was ~580 MB and the agents'
heartbeats timed out behind it. A delta carries the networks that changed
(:func:`controlplane.netmap.delta.delta`). An agent gets deltas only if its node record lists
:data:`ccs.features.NETWORK_MAP_DELTAS` (read at every send: an older agent would take a
delta for the whole map), else complete maps as before. A session opens with a complete map,
unless the agent names the version it held from its last session (``SessionRequest.
held_map_version``, sent only by agents that apply deltas) and the server still knows that
version's digests (:attr:`MapHeld.recent` of the node's sessions, kept by the hub after they
close): then with a delta on top of it, or no map if it is current. A node whose sessions
ended and reopened (a busy server, a heartbeat timeout) so costs the changed networks, not its
whole map (~1.2 MB at 500 nodes). The agent applies a delta only on top of the version it names and resyncs otherwise
(``nodeagent/network/map_book.py``).

Maps are built once and *encoded* once for every session that gets the same one: a complete
map by version, a delta by (base version, version), which fixes its content (every node of the
hollow benchmark holds the same map, and they all move from one version to the next together).
A queued message (:class:`QueuedMessage`) holds its own fields as a small message and the map
as those shared bytes; the stream sends the header's encoding followed by them, which is the
encoding of the whole message (a protobuf message is the concatenation of its fields). Until
2026-12-01 each session's message held a parsed copy of its map (``CopyFrom``) and gRPC
serialised each copy again: at 500 nodes, 500 copies and 500 encodings of the same ~1 MB per
flush (py-spy: 7 % of the server in the copies, most of the 22 % in gRPC's callbacks).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TypeVar

from ccs.features import NETWORK_MAP_DELTAS
from ccs.v1 import agent_pb2
from ccs.v1 import resources_pb2 as pb
from controlplane.netmap import NodeMap, complete, delta
from controlplane.netmap.delta import Key

PARSED_MAPS = 8
"""Maps kept, parsed and encoded, of each kind (complete by version, delta by base and version)."""

RECENT_MAPS = 3
"""Versions a session remembers having queued (with their digests), so that the next session
of the node can open with a delta on top of the one its agent names (``held_map_version``)."""


@dataclass(slots=True)
class MapHeld:
    """What a session's agent holds of its map once it read every queued message."""

    version: int = 0
    digests: Mapping[Key, int] = field(default_factory=dict)  # (application, network) -> digest
    # The last RECENT_MAPS versions queued, oldest first: the agent holds one of them (or an
    # older one) when the session ends, and names it when it opens the next.
    recent: dict[int, Mapping[Key, int]] = field(default_factory=dict)

    def now(self) -> tuple[int, Mapping[Key, int]]:
        return self.version, self.digests

    def take(self, target: NodeMap) -> None:
        self.version, self.digests = target.version, target.held
        self.recent.pop(target.version, None)
        _keep(self.recent, target.version, target.held, RECENT_MAPS)


EMPTY_MAP = agent_pb2.NetworkMap()
"""The ``network_map`` of a message without one (read only, as every shared map)."""


@dataclass(slots=True)
class QueuedMessage:
    """A session message on its queue: ``header`` holds every field but the network map, which
    is ``map_field``: the map's field encoded once and shared by every session that gets it.
    ``network_map`` is the same map parsed, shared too: read it, never change it."""

    header: agent_pb2.SessionMessage
    network_map: agent_pb2.NetworkMap = field(default_factory=lambda: EMPTY_MAP)  # the shared one
    map_field: bytes = b""

    def encode(self, header: agent_pb2.SessionMessage | None = None) -> bytes:
        """The whole message's encoding, with ``header`` (a copy with fields added to this
        stream only, :func:`controlplane.dispatcher.outgoing.attach`) in place of the header."""
        return (self.header if header is None else header).SerializeToString() + self.map_field


def takes_deltas(node: pb.Node | None) -> bool:
    """Whether the node's agent said it applies deltas (its record, from its heartbeats)."""
    return node is not None and NETWORK_MAP_DELTAS in node.status.agent_features


@dataclass(frozen=True, slots=True)
class _Encoded:
    parsed: agent_pb2.NetworkMap
    field: bytes  # SessionMessage field 7 (network_map) with ``parsed``, encoded

    @staticmethod
    def of(m: agent_pb2.NetworkMap) -> _Encoded:
        return _Encoded(m, agent_pb2.SessionMessage(network_map=m).SerializeToString())


class MapMessages:
    """Map messages, built and encoded once and shared by every session message that carries them."""

    def __init__(self) -> None:
        self._complete: dict[int, _Encoded] = {}
        self._deltas: dict[tuple[int, int], _Encoded] = {}

    def complete(self, target: NodeMap) -> agent_pb2.NetworkMap:
        """``target`` whole (shared: read it, or copy it)."""
        return self._complete_encoded(target).parsed

    def fill(self, out: QueuedMessage, base: tuple[int, Mapping[Key, int]], target: NodeMap,
             *, deltas: bool) -> int:
        """Give ``out`` the map that brings an agent holding ``base`` (version, digests) to
        ``target``: a delta if ``deltas``, else the whole map; none when it holds ``target``
        already. Returns the bytes of the map put in."""
        base_version, held = base
        if target.version == base_version:
            out.network_map, out.map_field = EMPTY_MAP, b""
            return 0
        if deltas and base_version:
            found = self._delta_encoded(base_version, held, target)
        else:
            found = self._complete_encoded(target)
        out.network_map, out.map_field = found.parsed, found.field
        return len(found.field)

    def _complete_encoded(self, target: NodeMap) -> _Encoded:
        found = self._complete.get(target.version)
        if found is None:
            found = _keep(self._complete, target.version, _Encoded.of(complete(target)))
        return found

    def _delta_encoded(self, base_version: int, held: Mapping[Key, int], target: NodeMap) -> _Encoded:
        found = self._deltas.get((base_version, target.version))
        if found is None:
            found = _keep(self._deltas, (base_version, target.version),
                          _Encoded.of(delta(base_version, held, target)))
        return found


K = TypeVar("K")
V = TypeVar("V")


def _keep(cache: dict[K, V], key: K, value: V, most: int = PARSED_MAPS) -> V:
    if len(cache) >= most:
        cache.pop(next(iter(cache)))
    cache[key] = value
    return value


__all__ = ["EMPTY_MAP", "PARSED_MAPS", "RECENT_MAPS", "MapHeld", "MapMessages", "QueuedMessage", "takes_deltas"]
