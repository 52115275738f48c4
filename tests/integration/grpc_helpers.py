"""Raw gRPC stubs for server tests: these test the server, independent of the SDK."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import grpc

from ccs.v1 import api_pb2_grpc


@dataclass
class Stubs:
    channel: grpc.aio.Channel
    metadata: tuple[tuple[str, str], ...]
    clusters: Any
    nodes: Any
    apps: Any
    services: Any
    containers: Any
    events: Any


def stubs(address: str, token: str | None) -> Stubs:
    ch = grpc.aio.insecure_channel(address)
    md = (("authorization", f"Bearer {token}"),) if token else ()
    return Stubs(
        ch, md,
        api_pb2_grpc.ClusterServiceStub(ch),
        api_pb2_grpc.NodeServiceStub(ch),
        api_pb2_grpc.ApplicationServiceStub(ch),
        api_pb2_grpc.ServiceServiceStub(ch),
        api_pb2_grpc.ContainerServiceStub(ch),
        api_pb2_grpc.EventServiceStub(ch),
    )
