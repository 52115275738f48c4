"""Raw gRPC stubs for server tests (these test the server, independent of the SDK), and the
calls most of them start with: a cluster, a deployed application, the code of a refused call."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

import grpc

from ccs.v1 import api_pb2, api_pb2_grpc
from ccs.v1 import resources_pb2 as pb
from tests.conftest import TRUST, ServerProc

T = TypeVar("T")

TEMPLATE = """
services:
  web:
    image: local/webapp:${TAG:-v1}
    ports: ["8080:80"]
    depends_on:
      db: {condition: service_healthy}
    deploy:
      replicas: 3
  db:
    image: local/busybox:1
    command: sleep 3600
    healthcheck:
      test: ["CMD", "true"]
      interval: 5s
"""


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


def channel(address: str, options: Sequence[tuple[str, Any]] = ()) -> grpc.aio.Channel:
    """A channel to a test server, verified against its CA (``TRUST``); plaintext only to a
    server the test started with --insecure. ``options`` are gRPC channel arguments (gRPC's
    defaults when none are given, e.g. its 4 MiB receive limit)."""
    ca = TRUST.get(address)
    if ca is None:
        return grpc.aio.insecure_channel(address, options=options)
    return grpc.aio.secure_channel(address, grpc.ssl_channel_credentials(root_certificates=ca.encode()),
                                   options=options)


def sync_channel(address: str) -> grpc.Channel:
    """The blocking twin of :func:`channel`."""
    ca = TRUST.get(address)
    if ca is None:
        return grpc.insecure_channel(address)
    return grpc.secure_channel(address, grpc.ssl_channel_credentials(root_certificates=ca.encode()))


def stubs(address: str, token: str | None) -> Stubs:
    ch = channel(address)
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


def call(server: ServerProc, fn: Callable[[Stubs], Awaitable[T]]) -> T:
    """Run ``fn`` on fresh stubs to ``server`` from synchronous code (a test that drives processes)."""
    async def main() -> T:
        s = stubs(server.address, server.token)
        try:
            return await fn(s)
        finally:
            await s.channel.close()

    return asyncio.run(main())


async def make_cluster(api: Stubs, name: str) -> pb.Cluster:
    cluster: pb.Cluster = await api.clusters.CreateCluster(
        api_pb2.CreateClusterRequest(name=name, description="test"), metadata=api.metadata
    )
    return cluster


async def deploy(api: Stubs, cluster: str, name: str = "shop", template: str = TEMPLATE,
                 **kw: object) -> pb.Application:
    req = api_pb2.CreateApplicationRequest(cluster=cluster, name=name, template=template, **kw)  # type: ignore[arg-type]
    app: pb.Application = await api.apps.CreateApplication(req, metadata=api.metadata)
    return app


async def code_of(coro: object) -> tuple[grpc.StatusCode, str]:
    try:
        await coro  # type: ignore[misc]
    except grpc.aio.AioRpcError as e:
        return e.code(), e.details() or ""
    raise AssertionError("the call succeeded")
