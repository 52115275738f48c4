"""The raw layer under the typed client: stubs, auth metadata, timeouts and error mapping.

Every RPC of the SDK goes through ``Transport.unary`` or ``Transport.stream``, so the bearer
token is attached and ``grpc.RpcError`` becomes a ``ccs.errors.CcsError`` in exactly one
place. Metadata is passed per call rather than by a channel interceptor because a caller may
hand in its own channel (the transport seam used by tests and by embedders).
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from pathlib import Path
from typing import Any, Generic, TypeVar, cast

import grpc
import grpc.aio
from google.protobuf.message import Message

from ccs.errors import from_rpc_error
from ccs.message_size import CLIENT_OPTIONS
from ccs.v1 import api_pb2_grpc

T = TypeVar("T")
R = TypeVar("R", bound=Message)


def make_channel(
    address: str, *, tls: bool = False, ca_file: str | os.PathLike[str] | None = None
) -> grpc.aio.Channel:
    """A channel to ``address``; with ``tls`` it verifies against ``ca_file`` (or the system
    roots when it is None). Its message size limits are ``ccs.message_size``'s."""
    if not address:
        raise ValueError("address: must be host:port, got an empty string")
    if not tls:
        if ca_file is not None:
            raise ValueError("ca_file: only meaningful with tls=True")
        return grpc.aio.insecure_channel(address, options=CLIENT_OPTIONS)
    roots = Path(ca_file).expanduser().read_bytes() if ca_file is not None else None
    return grpc.aio.secure_channel(address, grpc.ssl_channel_credentials(root_certificates=roots),
                                   options=CLIENT_OPTIONS)


class Transport:
    """Stubs for every service plus the two call shapes the API has."""

    def __init__(self, channel: grpc.aio.Channel, token: str | None, timeout: float | None) -> None:
        self.metadata: tuple[tuple[str, str], ...] = (
            (("authorization", f"Bearer {token}"),) if token else ()
        )
        self.timeout = timeout
        self.clusters = api_pb2_grpc.ClusterServiceStub(channel)
        self.nodes = api_pb2_grpc.NodeServiceStub(channel)
        self.applications = api_pb2_grpc.ApplicationServiceStub(channel)
        self.services = api_pb2_grpc.ServiceServiceStub(channel)
        self.containers = api_pb2_grpc.ContainerServiceStub(channel)
        self.events = api_pb2_grpc.EventServiceStub(channel)
        self.releases = api_pb2_grpc.ReleaseServiceStub(channel)
        self.routes = api_pb2_grpc.RouteServiceStub(channel)
        self.networks = api_pb2_grpc.NetworkServiceStub(channel)
        self.tokens = api_pb2_grpc.TokenServiceStub(channel)
        self.audit = api_pb2_grpc.AuditServiceStub(channel)

    async def unary(self, method: Any, request: Message, response_type: type[R]) -> R:
        """Call a unary RPC; ``response_type`` only types the result for the checker."""
        try:
            response = await method(request, metadata=self.metadata, timeout=self.timeout)
        except grpc.RpcError as exc:
            raise from_rpc_error(exc) from None
        return cast(R, response)

    async def stream(self, method: Any, request: Message, item_type: type[R]) -> AsyncIterator[R]:
        """Iterate a server-streaming RPC (no deadline: streams are long-lived); the call is
        cancelled when the iterator is closed early."""
        call = method(request, metadata=self.metadata)
        try:
            async for item in call:
                yield cast(R, item)
        except grpc.RpcError as exc:
            raise_if_cancelled()
            raise from_rpc_error(exc) from None
        finally:
            call.cancel()
        raise_if_cancelled()


def raise_if_cancelled() -> None:
    """Raise CancelledError if cancelling the current task was requested, even if it was eaten.

    Why: grpc.aio can swallow the CancelledError thrown into a task that awaits a stream read:
    the read then ends (or fails with the RPC's error) instead. A caller that reconnects on
    such an end (``Events.watch``) would then never stop, and a Ctrl-C of ``ccs events -f``
    would hang; ``Task.cancelling()`` keeps the count of cancel requests, so the stream's end
    is checked against it at this one boundary (the agent does the same, nodeagent/agent.py).
    """
    task = asyncio.current_task()
    if task is not None and task.cancelling():
        raise asyncio.CancelledError


class Listing(list[T], Generic[T]):
    """All items of a paged list, plus the etcd ``revision`` the first page was read at.

    Watching from ``revision + 1`` after a list leaves no gap (later pages may already
    include some of the changes the watch then replays; apply them idempotently).
    """

    revision: int = 0


async def collect(
    fetch: Callable[[str], Awaitable[R]], items: Callable[[R], Sequence[T]]
) -> Listing[T]:
    """Follow ``next_page_token`` until the last page and return every item."""
    out: Listing[T] = Listing()
    token = ""
    first = True
    while True:
        page = await fetch(token)
        if first:
            out.revision = int(getattr(page, "revision", 0))
            first = False
        out.extend(items(page))
        token = str(getattr(page, "next_page_token", ""))
        if not token:
            return out
