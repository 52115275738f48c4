"""Builders shared by the scheduler's table tests: small protobuf messages with readable defaults.

(Named ``test_scheduler_*`` to sit with the scheduler's tests; it holds no tests itself.)
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping

from ccs.v1 import resources_pb2 as pb
from controlplane.scheduler import PlacementResult

GIB = 1 << 30
MIB = 1 << 20


def node(
    name: str,
    *,
    labels: Mapping[str, str] | None = None,
    role: int = pb.NODE_ROLE_WORKER,
    state: int = pb.NODE_STATE_READY,
    availability: int = pb.NODE_AVAILABILITY_ACTIVE,
    cpus: float = 4.0,
    memory: int = 8 * GIB,
    os: str = "linux",
) -> pb.Node:
    n = pb.Node()
    n.meta.name = name
    n.meta.id = f"id-{name}"
    n.meta.labels.update(labels or {})
    n.spec.role = role  # type: ignore[assignment]
    n.spec.availability = availability  # type: ignore[assignment]
    n.status.state = state  # type: ignore[assignment]
    n.status.hostname = f"host-{name}"
    n.status.os = os
    n.status.capacity.cpus = cpus
    n.status.capacity.memory_bytes = memory
    return n


def spec(
    *,
    constraints: Iterable[str] = (),
    spread: Iterable[str] = (),
    max_per_node: int = 0,
    cpus: float = 0.0,
    memory: int = 0,
    ports: Iterable[tuple[int, str]] = (),
    mode: int = pb.SERVICE_MODE_REPLICATED,
) -> pb.ServiceSpec:
    s = pb.ServiceSpec(image="local/busybox:1")
    s.mode = mode  # type: ignore[assignment]
    s.placement.constraints.extend(constraints)
    s.placement.spread.extend(spread)
    s.placement.max_replicas_per_node = max_per_node
    s.resources.reservations.cpus = cpus
    s.resources.reservations.memory_bytes = memory
    for published, protocol in ports:
        s.ports.add(target=published, published=published, protocol=protocol, mode="host")
    return s


def container(
    name: str,
    on: str,
    *,
    service: str = "other",
    application: str = "app",
    of: pb.ServiceSpec | None = None,
    desired: int = pb.DESIRED_STATE_RUNNING,
) -> pb.Container:
    c = pb.Container(application=application, service=service, node=on)
    c.desired_state = desired  # type: ignore[assignment]
    c.meta.name = name
    if of is not None:
        c.spec.CopyFrom(of)
    return c


def per_node(result: PlacementResult) -> dict[str, int]:
    """How many of the assigned containers went to each node."""
    return dict(sorted(Counter(result.assigned.values()).items()))


def names(count: int, prefix: str = "web") -> list[str]:
    return [f"{prefix}-{i}" for i in range(1, count + 1)]
