"""Per-node scheduling state: static attributes copied out of the Node message once, plus the
mutable free capacity, used host ports and container count that placements consume.

Copying protobuf fields into a slotted object once per snapshot matters for speed: reading a map
field of a protobuf message costs far more than a dict lookup, and the filters read them for every
(service, node) pair of a reconcile pass.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from ccs.v1 import resources_pb2

from .constraints import Constraint

_UNREADY_STATES = {
    resources_pb2.NODE_STATE_UNSPECIFIED: "not ready",
    resources_pb2.NODE_STATE_DOWN: "down",
    resources_pb2.NODE_STATE_DISCONNECTED: "disconnected",
}
_UNAVAILABLE = {
    resources_pb2.NODE_AVAILABILITY_PAUSE: "paused",
    resources_pb2.NODE_AVAILABILITY_DRAIN: "drained",
}
CPU_EPSILON = 1e-9
"""CPU amounts are floats summed from many containers; compare with a little slack."""


def _role(node: resources_pb2.Node) -> str:
    # A node that never had a role set joined as a worker: managers are promoted explicitly.
    return "manager" if node.spec.role == resources_pb2.NODE_ROLE_MANAGER else "worker"


@dataclass(slots=True, eq=False)
class NodeState:
    """One node in a :class:`~controlplane.scheduler.view.ClusterView`."""

    node: resources_pb2.Node
    name: str
    attributes: dict[str, str]  # constraint key -> value, e.g. "node.role" -> "worker"
    labels: dict[str, str]
    unready: str  # empty when the node takes new containers, else why not ("down", "drained")
    free_cpus: float
    free_memory: int
    ports: set[tuple[int, str]] = field(default_factory=set)
    containers: int = 0

    @classmethod
    def of(cls, node: resources_pb2.Node) -> NodeState:
        status = node.status
        if status.state != resources_pb2.NODE_STATE_READY:
            unready = _UNREADY_STATES.get(status.state, "not ready")
        else:
            unready = _UNAVAILABLE.get(node.spec.availability, "")
        return cls(
            node=node,
            name=node.meta.name,
            attributes={
                "node.id": node.meta.id,
                "node.hostname": status.hostname,
                "node.role": _role(node),
                "node.platform.os": status.os,
                "node.platform.arch": status.arch,
            },
            labels=dict(node.meta.labels),
            unready=unready,
            free_cpus=status.capacity.cpus,
            free_memory=status.capacity.memory_bytes,
        )

    def violation(self, constraints: tuple[Constraint, ...]) -> str:
        """Why the node fails the first unsatisfied constraint, or "" when it satisfies all.

        The phrase starts with a verb so it can be counted: "3 have zone=us".
        """
        for c in constraints:
            if c.label is not None:
                have = self.labels.get(c.label)
                if ((have or "").casefold() == c.folded) != c.equal:
                    return f"has no {c.label} label" if have is None else f"has {c.label}={have}"
            else:
                have = self.attributes[c.key]
                if (have.casefold() == c.folded) != c.equal:
                    return self._attribute_violation(c, have)
        return ""

    @staticmethod
    def _attribute_violation(c: Constraint, have: str) -> str:
        short = c.key.rsplit(".", 1)[-1]
        if c.equal and c.key in ("node.id", "node.hostname"):
            # Every other node differs; naming 499 hostnames would drown the one that matters.
            return f"has another {short}"
        return f"has {short} {have}" if have else f"has no {short}"
