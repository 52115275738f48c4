"""A node's map as parts, and the delta that brings an agent from one map to another. Pure.

Why deltas (issue 15): a node's map holds every address of the applications it has a block
of, so it is O(cluster); sent whole on every change, one flush at 500 nodes and 20,000
containers was ~580 MB and the agents' heartbeats timed out behind it. A change alters a few
networks, so the dispatcher sends those (``NetworkMap.base_version`` != 0, see
``protos/ccs/v1/agent.proto``) and the agent, which keeps its map keyed by (application,
network), applies them only on top of the version they were computed against.

* :class:`Part`: one network's encoding (``encode_network``) and its ``part_digest``, computed
  once per recomputation of its application (:class:`~controlplane.netmap.cache.NetworkMaps`)
  and shared by every node that receives it;
* :class:`NodeMap`: one node's map as parts, with its version (``map_version``: order-free,
  from the parts' digests, so versioning a map costs O(its networks), not O(its bytes)) and
  ``held``, the (application, network) -> digest a session remembers of what it queued;
* :func:`delta`: the message that turns the map an agent holds (known only by its version and
  ``held``) into a ``NodeMap``: the networks whose digest differs or that are new, and the keys
  that went away; :func:`complete`: the whole map, for a session that opens.

Applying any sequence of deltas to the complete map they start from gives the complete map
of the last version (tested with random changes against :func:`network_map`).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from ccs.v1 import agent_pb2
from controlplane.content_version import part_digest

from .build import encode_network, map_head, map_version

Key = tuple[str, str]  # (application, network)


@dataclass(frozen=True, slots=True)
class Part:
    """One network of a map: its encoding as an entry of ``NetworkMap.networks`` and the
    digest the map's version and the sessions' comparisons use."""

    raw: bytes
    digest: int

    @staticmethod
    def of(network: agent_pb2.AppNetwork) -> Part:
        raw = encode_network(network)
        return Part(raw, part_digest(raw))


@dataclass(frozen=True, slots=True)
class NodeMap:
    """One node's map: ``head`` (cluster, pod_cidr encoded) and its parts by key."""

    head: bytes
    parts: Mapping[Key, Part]
    version: int = field(init=False)
    held: Mapping[Key, int] = field(init=False)  # key -> digest: what a session remembers

    def __post_init__(self) -> None:
        held = {key: part.digest for key, part in self.parts.items()}
        object.__setattr__(self, "held", held)
        object.__setattr__(self, "version", map_version(self.head, held.values()))

    @staticmethod
    def of(cluster: str, pod_cidr: str, parts: Mapping[Key, Part]) -> NodeMap:
        return NodeMap(map_head(cluster, pod_cidr), parts)

    def encoded(self) -> bytes:
        """The complete map's encoding, without its version (as ``assemble_encoded``)."""
        return self.head + b"".join(self.parts[key].raw for key in sorted(self.parts))


def complete(target: NodeMap) -> agent_pb2.NetworkMap:
    """``target`` whole (``base_version`` 0)."""
    m = agent_pb2.NetworkMap.FromString(target.encoded())
    m.version = target.version
    return m


def changes(held: Mapping[Key, int], target: NodeMap) -> tuple[list[Key], list[Key]]:
    """The keys whose network is new or differs from ``held``, and those ``held`` has that
    ``target`` has not; both sorted."""
    changed = sorted(key for key, part in target.parts.items() if held.get(key) != part.digest)
    removed = sorted(key for key in held if key not in target.parts)
    return changed, removed


def delta(base_version: int, held: Mapping[Key, int], target: NodeMap) -> agent_pb2.NetworkMap:
    """What turns the map of ``base_version`` (whose networks' digests are ``held``) into
    ``target``."""
    changed, removed = changes(held, target)
    m = agent_pb2.NetworkMap.FromString(target.head + b"".join(target.parts[key].raw for key in changed))
    m.version = target.version
    m.base_version = base_version
    m.removed.extend(agent_pb2.AppNetwork(application=app, network=network) for app, network in removed)
    return m


__all__ = ["Key", "NodeMap", "Part", "changes", "complete", "delta"]
