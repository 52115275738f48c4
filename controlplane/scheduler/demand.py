"""What one container of a service asks of a node, read once from the ServiceSpec.

Reading the protobuf spec once per ``place`` call (instead of once per node tried) keeps the hot
loop on plain Python values, and validating it here means bad input fails with the field named
before any node is looked at.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from ccs.v1 import resources_pb2

from .constraints import Constraint, InvalidSpecError, parse_constraints, parse_spread

PortKey = tuple[int, str]
"""A published host port and its protocol, e.g. ``(8080, "tcp")``."""

PROTOCOLS = ("tcp", "udp", "sctp")


@dataclass(frozen=True, slots=True)
class ServiceRef:
    """The service whose containers are being placed: its application, name and spec."""

    application: str
    name: str
    spec: resources_pb2.ServiceSpec

    @property
    def key(self) -> tuple[str, str]:
        return (self.application, self.name)


@dataclass(frozen=True, slots=True)
class PlacementResult:
    """The outcome of one ``place`` call.

    ``assigned`` maps container name to node name; ``unplaced`` maps container name to a readable,
    aggregate reason (the same for every container left over, since they were left for one cause).
    """

    assigned: dict[str, str] = field(default_factory=dict)
    unplaced: dict[str, str] = field(default_factory=dict)


def format_port(port: PortKey) -> str:
    return f"{port[0]}/{port[1]}"


def published_ports(ports: Iterable[resources_pb2.PortSpec]) -> list[PortKey]:
    """The host ports a container holds. Ingress mode is treated as host mode (no routing mesh)."""
    return [(p.published, (p.protocol or "tcp").lower()) for p in ports if p.published]


@dataclass(frozen=True, slots=True)
class Demand:
    """One container's needs and the service's placement rules, validated."""

    key: tuple[str, str]
    cpus: float
    memory: int
    ports: tuple[PortKey, ...]
    max_per_node: int  # 0 means unlimited
    is_global: bool
    constraints: tuple[Constraint, ...]
    spread: tuple[str, ...]  # label names, highest precedence first

    @classmethod
    def of(cls, spec: resources_pb2.ServiceSpec, key: tuple[str, str] = ("", "")) -> Demand:
        reservations = spec.resources.reservations
        if reservations.cpus < 0:
            raise InvalidSpecError(
                "resources.reservations.cpus", f"must not be negative, got {reservations.cpus:g}"
            )
        if reservations.memory_bytes < 0:
            raise InvalidSpecError(
                "resources.reservations.memory_bytes",
                f"must not be negative, got {reservations.memory_bytes}",
            )
        ports: list[PortKey] = []
        for i, port in enumerate(spec.ports):
            if not port.published:
                continue
            name = (port.protocol or "tcp").lower()
            if name not in PROTOCOLS:
                raise InvalidSpecError(
                    f"ports[{i}].protocol", f"must be one of {', '.join(PROTOCOLS)}, not {name!r}"
                )
            if port.published > 65535:
                raise InvalidSpecError(
                    f"ports[{i}].published", f"must be at most 65535, got {port.published}"
                )
            if (port.published, name) in ports:
                raise InvalidSpecError(
                    f"ports[{i}].published",
                    f"host port {port.published}/{name} is published twice; "
                    "no node could run the container",
                )
            ports.append((port.published, name))
        is_global = spec.mode == resources_pb2.SERVICE_MODE_GLOBAL
        return cls(
            key=key,
            cpus=reservations.cpus,
            memory=reservations.memory_bytes,
            ports=tuple(ports),
            # A global service runs one container per node: that is max_replicas_per_node=1.
            max_per_node=1 if is_global else spec.placement.max_replicas_per_node,
            is_global=is_global,
            constraints=parse_constraints(spec.placement.constraints),
            # Spreading a global service is meaningless: every eligible node gets one.
            spread=() if is_global else parse_spread(spec.placement.spread),
        )
