"""Observed container -> ccs.v1.ContainerStatus(Update): pure, one place.

The runtime maps engine states to ccs states; this module adds what only the agent knows:
that a container it stopped on purpose is STOPPED (not EXITED), the verdict of an agent-side
probe, the node address for endpoints, and timestamps. A live container's addresses on its
application networks (keyed by Compose network name) go up as the engine reports them: they
are what every node's resolver answers for the service's names.
"""

from __future__ import annotations

import platform
import socket
from collections.abc import Sequence

from google.protobuf import timestamp_pb2

from ccs.features import FEATURES
from ccs.v1 import agent_pb2, resources_pb2
from nodeagent.runtime.types import HostInfo, Observed, State

from .converge import LIVE_STATES


def _ts(seconds: float) -> timestamp_pb2.Timestamp:
    ts = timestamp_pb2.Timestamp()
    ts.FromNanoseconds(int(seconds * 1e9))
    return ts


def endpoints(
    c: resources_pb2.Container, o: Observed | None, *, node: str, address: str
) -> list[resources_pb2.Endpoint]:
    """One Endpoint per published port of a live container.

    The engine's bindings are the truth (an ephemeral host port is only known there); a
    runtime that reports none (the hollow-node fake) falls back to the spec's fixed ports.
    """
    if o is None or o.state not in LIVE_STATES:
        return []
    name = c.meta.name
    bound = [(p.host_port, p.target, p.protocol) for p in o.ports if p.host_port]
    if not bound:
        bound = [(p.published, p.target, p.protocol or "tcp") for p in c.spec.ports if p.published]
    seen: set[tuple[int, int, str]] = set()
    out: list[resources_pb2.Endpoint] = []
    for published, target, protocol in bound:
        if (published, target, protocol) in seen:  # IPv4 and IPv6 bindings of one port
            continue
        seen.add((published, target, protocol))
        out.append(
            resources_pb2.Endpoint(
                container=name, node=node, address=address, published=published, target=target,
                protocol=protocol or "tcp",
            )
        )
    return out


def build_status(
    c: resources_pb2.Container,
    o: Observed | None,
    *,
    state: int | None = None,
    message: str | None = None,
    node: str,
    address: str,
    now: float,
) -> resources_pb2.ContainerStatus:
    """The status to report for `c`; `state`/`message` override what the engine says."""
    st = resources_pb2.ContainerStatus(updated_at=_ts(now))
    if o is not None:
        st.state = o.state  # type: ignore[assignment]  # ContainerState is an int enum
        st.exit_code = o.exit_code
        st.message = o.message
        st.docker_id = o.docker_id
        if o.started_at:
            st.started_at.CopyFrom(_ts(o.started_at))
        if state is None:
            st.failure_reason = o.failure_reason  # type: ignore[assignment]  # an int enum
    if state is not None:
        st.state = state  # type: ignore[assignment]
    if message is not None:
        st.message = message
    if st.state in LIVE_STATES:
        st.exit_code = 0
    st.endpoints.extend(endpoints(c, o, node=node, address=address))
    if o is not None and st.state in LIVE_STATES:
        st.addresses.update(o.addresses)
    return st


def update(
    c: resources_pb2.Container, status: resources_pb2.ContainerStatus
) -> agent_pb2.ContainerStatusUpdate:
    return agent_pb2.ContainerStatusUpdate(
        application=c.application, service=c.service, container=c.meta.name, status=status
    )


def same_report(a: resources_pb2.ContainerStatus, b: resources_pb2.ContainerStatus) -> bool:
    """Equal apart from updated_at: re-sending it would tell the control plane nothing new."""
    a2, b2 = resources_pb2.ContainerStatus(), resources_pb2.ContainerStatus()
    a2.CopyFrom(a)
    b2.CopyFrom(b)
    a2.ClearField("updated_at")
    b2.ClearField("updated_at")
    return a2 == b2


def state_name(state: int) -> str:
    return str(State.Name(state)).removeprefix("CONTAINER_STATE_")


def node_status(info: HostInfo, address: str, agent_version: str) -> resources_pb2.NodeStatus:
    """The node's status from the engine's `info` (the host's own answers where it has none)."""
    return resources_pb2.NodeStatus(
        address=address,
        hostname=info.hostname or socket.gethostname(),
        capacity=resources_pb2.NodeResources(cpus=info.cpus, memory_bytes=info.memory_bytes),
        docker_version=info.docker_version,
        agent_version=agent_version,
        agent_features=list(FEATURES),
        os=info.os or platform.system().lower(),
        arch=info.arch or platform.machine(),
    )


__all__: Sequence[str] = ("build_status", "endpoints", "node_status", "same_report", "state_name", "update")
