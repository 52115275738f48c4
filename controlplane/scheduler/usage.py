"""``Usage``: what live containers hold per node, kept change by change.

Why: a :class:`~controlplane.scheduler.view.ClusterView` built from every container record
costs O(containers) per reconcile pass, whatever the pass changes (issue 15: at 100,000
containers, a pass that places one container read 100,000 records first). The informer feeds
each container change to :meth:`Usage.apply` (O(1)), and a pass's view starts from these sums:
O(nodes) to copy the per-node figures, and a service's per-node replica counts only when the
pass places that service (copy on write, see ``ClusterView``).

What counts is exactly what ``ClusterView`` counts from records: a container that holds a slot
(it has a node and is meant to run), with its own spec's reservations and published ports.
Ports are counted (two records may claim one port during a change), so removing one claim
keeps the other.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

from ccs.v1 import resources_pb2

from .demand import PortKey, published_ports


def holds_slot(container: resources_pb2.Container) -> bool:
    """A container that holds a slot on a node: it has one and is meant to be running."""
    return bool(container.node) and container.desired_state == resources_pb2.DESIRED_STATE_RUNNING


@dataclass(slots=True)
class NodeUsage:
    cpus: float = 0.0
    memory: int = 0
    containers: int = 0
    ports: Counter[PortKey] = field(default_factory=Counter)


@dataclass
class Usage:
    """Per node: reserved CPU, memory, published ports and live containers; per service: its
    live replicas per node. Nodes are by name; a node without a record still counts here (the
    view ignores names it has no node for)."""

    nodes: dict[str, NodeUsage] = field(default_factory=dict)
    counts: dict[tuple[str, str], dict[str, int]] = field(default_factory=dict)

    def apply(self, old: resources_pb2.Container | None, new: resources_pb2.Container | None) -> None:
        """A container record changed from ``old`` to ``new`` (None: absent)."""
        if old is not None and holds_slot(old):
            self._add(old, -1)
        if new is not None and holds_slot(new):
            self._add(new, 1)

    def _add(self, c: resources_pb2.Container, sign: int) -> None:
        node = self.nodes.get(c.node)
        if node is None:
            node = self.nodes[c.node] = NodeUsage()
        reservations = c.spec.resources.reservations
        node.cpus += sign * reservations.cpus
        node.memory += sign * reservations.memory_bytes
        node.containers += sign
        for port in published_ports(c.spec.ports):
            node.ports[port] += sign
            if node.ports[port] <= 0:
                del node.ports[port]
        if node.containers <= 0 and not node.ports:
            del self.nodes[c.node]  # exact zero again: no float residue is kept
        key = (c.application, c.service)
        per_node = self.counts.setdefault(key, {})
        n = per_node.get(c.node, 0) + sign
        if n > 0:
            per_node[c.node] = n
        else:
            per_node.pop(c.node, None)
            if not per_node:
                del self.counts[key]
