"""The agent's copy of its node's network map, kept by (application, network), chained by version. Pure.

The control plane sends a complete map when a session opens (``NetworkMap.base_version`` 0),
or, when the agent names the version it holds (``SessionRequest.held_map_version``: this book
survives sessions) and the server still knows it, a delta on it or no map at all; then,
when the map changes, a delta: the networks that are new or changed and the keys that
went away, valid only on top of the map of ``base_version`` (issue 15: whole maps are
O(cluster) each and choked the agents' connections at 500 nodes). The rule is the assignments'
(`nodeagent.assignments`): a delta that does not chain on the version held means a message was
lost or misordered, so the agent does not guess; `MapBook.apply` raises `MapChainBroken` (a
`ChainBroken`: the session ends and the next one opens from the version still held).

The fabric is given the complete map the book holds after each message, the same message it
was given when maps came whole, so planning (`plan`) does not know deltas exist.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from ccs.v1 import agent_pb2

from ..assignments import ChainBroken

Key = tuple[str, str]  # (application, network)


class MapChainBroken(ChainBroken):
    """A map delta does not apply on top of the map version held."""

    def __init__(self, held: int, m: agent_pb2.NetworkMap) -> None:
        Exception.__init__(
            self,
            f"network map delta base_version={m.base_version} version={m.version} does not apply on "
            f"held map version {held}; resyncing",
        )


@dataclass(slots=True)
class MapBook:
    """The map held: its version, head fields and networks by key (version 0: none yet)."""

    version: int = 0
    cluster: str = ""
    pod_cidr: str = ""
    networks: dict[Key, agent_pb2.AppNetwork] = field(default_factory=dict)

    def apply(self, m: agent_pb2.NetworkMap) -> agent_pb2.NetworkMap | None:
        """Apply one map message; return the complete map now held, or None when ``m`` says
        "unchanged" (version 0). Raises `MapChainBroken` for a delta on another version."""
        return self.complete() if self.take(m) else None

    def take(self, m: agent_pb2.NetworkMap) -> bool:
        """Apply one map message without building the complete map (an agent without a
        network fabric keeps its book only to name its version at the next session); False
        when ``m`` says "unchanged". Raises `MapChainBroken` as `apply`."""
        if m.version == 0:
            return False
        if m.base_version == 0:
            networks = {}
        elif m.base_version == self.version and self.version != 0:
            networks = self.networks
            for gone in m.removed:
                networks.pop((gone.application, gone.network), None)
        else:
            raise MapChainBroken(self.version, m)
        for n in m.networks:
            networks[(n.application, n.network)] = n
        self.networks = networks
        self.version, self.cluster, self.pod_cidr = m.version, m.cluster, m.pod_cidr
        return True

    def complete(self) -> agent_pb2.NetworkMap:
        """The map held, as the complete message (networks sorted by key)."""
        out = agent_pb2.NetworkMap(cluster=self.cluster, version=self.version, pod_cidr=self.pod_cidr)
        out.networks.extend(self.networks[key] for key in sorted(self.networks))
        return out


__all__ = ["MapBook", "MapChainBroken"]
