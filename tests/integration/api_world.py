"""A ccs-server on an etcd of its own, driven from synchronous (hypothesis) tests: raw calls to
any RPC, etcd's revision read with an etcd client, and the checks every refusal must pass.

Shared by the API property tests (``test_api_fuzz.py``) and the regression tests of what they
found (``test_bad_input_api.py``). The server runs without reconcilers, so etcd's state moves
only when the API accepts a write: a refused request must leave it unchanged (its audit record
aside).
"""

from __future__ import annotations

import asyncio
import contextlib
import re
from collections.abc import Coroutine, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import aetcd
import grpc
from grpc import StatusCode
from grpc_health.v1 import health_pb2, health_pb2_grpc

from ccs.message_size import MAX_REQUEST_BYTES
from ccs.v1 import api_pb2, api_pb2_grpc
from ccs.v1 import resources_pb2 as pb
from controlplane.store.keys import AUDIT
from tests.api_fuzz import SEED_APP, SEED_CLUSTER, SEED_NODE, SEED_TEMPLATE, Rpc
from tests.conftest import EtcdProc, ServerProc, start_etcd, start_server
from tests.integration.grpc_helpers import channel
from tests.integration.node_link import register_node

T = TypeVar("T")
REFUSALS = {StatusCode.INVALID_ARGUMENT, StatusCode.NOT_FOUND, StatusCode.ALREADY_EXISTS,
            StatusCode.FAILED_PRECONDITION, StatusCode.ABORTED, StatusCode.PERMISSION_DENIED,
            StatusCode.OUT_OF_RANGE}
STREAM_WAIT = 2.0  # how long a stream that is accepted is read before the test moves on


def field_path_root(details: str) -> str | None:
    """The first segment of the field path an error message starts with (``a.b[0]: why``)."""
    match = re.match(r"^(?P<root>\.?[A-Za-z_][\w-]*|)[.\[:]", details)
    return match.group("root") if match and ": " in details else None


def names_a_field(rpc: Rpc, details: str) -> bool:
    root = field_path_root(details)
    if root is None:
        return False
    if root in rpc.input.fields_by_name or root == "request":
        return True
    parses_template = rpc.name in ("CreateApplication", "UpdateApplication", "RollbackApplication")
    # A template's errors name paths in the template, whose first segment is whatever key the
    # document has (an unknown top-level key such as "web" is named as such): any identifier.
    return parses_template


@dataclass
class World:
    """The server under test, its etcd, and one event loop all calls run on."""

    server: ServerProc
    etcd: EtcdProc
    loop: asyncio.AbstractEventLoop = field(default_factory=asyncio.new_event_loop)
    channel: grpc.aio.Channel | None = None
    client: aetcd.Client | None = None

    @property
    def md(self) -> tuple[tuple[str, str], ...]:
        return (("authorization", f"Bearer {self.server.token}"),)

    def run(self, coro: Coroutine[Any, Any, T]) -> T:
        return self.loop.run_until_complete(coro)

    async def open(self) -> None:
        # TLS, as the server runs by default; no client-side size limits, so the server's own apply.
        self.channel = channel(self.server.address, options=[
            ("grpc.max_send_message_length", -1), ("grpc.max_receive_message_length", -1)])
        host, port = self.etcd.url.removeprefix("http://").split(":")
        self.client = aetcd.Client(host, int(port))
        await self.seed()

    async def close(self) -> None:
        assert self.channel is not None and self.client is not None
        await self.channel.close()
        await self.client.close()

    async def revision(self) -> tuple[int, int]:
        """What etcd holds outside the audit log, as (highest mod revision, number of keys):
        it changes with every put or delete of state. The audit log is left out because every
        refused change is audited (issue 12: refusals are recorded), which is the one write a
        refused request may make."""
        assert self.client is not None
        highest, count = 0, 0
        for kv in (await self.client.get_prefix(b"/ccs/", keys_only=True)).kvs:
            if not kv.key.startswith(AUDIT.encode()):
                highest, count = max(highest, int(kv.mod_revision)), count + 1
        return highest, count

    async def seed(self) -> None:
        """Create whatever of the seeded objects a request removed or changed beyond use."""
        assert self.channel is not None
        clusters = api_pb2_grpc.ClusterServiceStub(self.channel)
        apps = api_pb2_grpc.ApplicationServiceStub(self.channel)
        nodes = api_pb2_grpc.NodeServiceStub(self.channel)
        try:
            await clusters.GetCluster(api_pb2.GetClusterRequest(name=SEED_CLUSTER), metadata=self.md)
        except grpc.aio.AioRpcError:
            await clusters.CreateCluster(api_pb2.CreateClusterRequest(name=SEED_CLUSTER), metadata=self.md)
        try:
            await nodes.GetNode(api_pb2.GetNodeRequest(cluster=SEED_CLUSTER, name=SEED_NODE), metadata=self.md)
        except grpc.aio.AioRpcError:
            token = (await clusters.GetJoinToken(api_pb2.GetJoinTokenRequest(cluster=SEED_CLUSTER),
                                                 metadata=self.md)).token
            link = await register_node(self.server.address, token, SEED_NODE, "10.9.9.9")
            await link.close()
        try:
            got = await apps.GetApplication(api_pb2.GetApplicationRequest(cluster=SEED_CLUSTER, name=SEED_APP),
                                            metadata=self.md)
            if got.application.spec.desired_state != pb.DESIRED_STATE_REMOVED:
                return
            await apps.DeleteApplication(api_pb2.DeleteApplicationRequest(cluster=SEED_CLUSTER, name=SEED_APP),
                                         metadata=self.md)
        except grpc.aio.AioRpcError:
            pass
        await apps.CreateApplication(api_pb2.CreateApplicationRequest(
            cluster=SEED_CLUSTER, name=SEED_APP, template=SEED_TEMPLATE), metadata=self.md)
        await apps.UpdateApplication(api_pb2.UpdateApplicationRequest(  # a canary release, r000002
            cluster=SEED_CLUSTER, name=SEED_APP, template=SEED_TEMPLATE.replace("busybox:1", "busybox:2"),
            strategy="canary"), metadata=self.md)

    async def call(
        self, rpc: Rpc, raw: bytes, metadata: tuple[tuple[str, str], ...] | None = None
    ) -> tuple[StatusCode, str]:
        """Send ``raw`` as ``rpc``'s request (as the admin unless ``metadata`` is given); a
        stream is read for a moment, then let go."""
        assert self.channel is not None
        md = self.md if metadata is None else metadata
        try:
            if rpc.server_streaming:
                stream = self.channel.unary_stream(rpc.path)(raw, metadata=md, timeout=STREAM_WAIT)
                async for _ in stream:
                    pass
            else:
                await self.channel.unary_unary(rpc.path)(raw, metadata=md, timeout=120)
        except grpc.aio.AioRpcError as exc:
            return exc.code(), exc.details() or ""
        return StatusCode.OK, ""

    async def alive(self) -> None:
        assert self.channel is not None
        assert self.server.proc.poll() is None, "the server died:\n" + self.server.log_path.read_text()[-3000:]
        health = health_pb2_grpc.HealthStub(self.channel)
        got = await health.Check(health_pb2.HealthCheckRequest(), timeout=30)
        assert got.status == health_pb2.HealthCheckResponse.SERVING

    async def check(self, rpc: Rpc, raw: bytes, shown: str) -> tuple[StatusCode, str]:
        before = await self.revision()
        code, details = await self.call(rpc, raw)
        where = f"{rpc.name}({shown})"
        assert code not in (StatusCode.INTERNAL, StatusCode.UNKNOWN, StatusCode.UNAVAILABLE), \
            f"{where} -> {code.name}: {details[:2000]}"
        allowed = REFUSALS | {StatusCode.OK}
        if rpc.server_streaming:
            allowed.add(StatusCode.DEADLINE_EXCEEDED)  # accepted, and nothing to send yet
        if len(raw) > MAX_REQUEST_BYTES:
            allowed.add(StatusCode.RESOURCE_EXHAUSTED)
        assert code in allowed, f"{where} -> {code.name}: {details[:2000]}"
        if code not in (StatusCode.OK, StatusCode.DEADLINE_EXCEEDED):
            assert await self.revision() == before, f"{where} was refused ({code.name}) but wrote to etcd"
        if code == StatusCode.INVALID_ARGUMENT:
            assert names_a_field(rpc, details), f"{where}: the refusal names no field path: {details[:2000]!r}"
        await self.alive()
        if code == StatusCode.OK:
            await self.seed()
        return code, details


@contextlib.contextmanager
def running_world(base: Path) -> Iterator[World]:
    """An etcd and a ccs-server (no reconcilers) under ``base``, seeded; no INTERNAL logged."""
    etcd = start_etcd(base)
    server = start_server(base / "state", etcd.url, base / "config.yaml",
                          extra=["--no-reconcilers", "--template-cpu-seconds", "2"])
    w = World(server, etcd)
    try:
        assert server.token, server.log_path.read_text()
        w.run(w.open())
        yield w
        w.run(w.close())
    finally:
        w.loop.close()
        server.stop()
        etcd.stop()
    assert '"unhandled error"' not in server.log_path.read_text()
