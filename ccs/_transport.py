"""The raw layer under the typed client: stubs, auth metadata, timeouts and error mapping.

Every RPC of the SDK goes through ``Transport.unary`` or ``Transport.stream``, so the bearer
token is attached and ``grpc.RpcError`` becomes a ``ccs.errors.CcsError`` in exactly one
place. Metadata is passed per call rather than by a channel interceptor because a caller may
hand in its own channel (the transport seam used by tests and by embedders).
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from pathlib import Path
from typing import Any, Generic, TypeVar, cast

import grpc
import grpc.aio
from google.protobuf.message import Message

from ccs.cancellation import raise_if_cancelled
from ccs.errors import from_rpc_error
from ccs.message_size import CLIENT_OPTIONS
from ccs.v1 import api_pb2_grpc, triggers_pb2_grpc

T = TypeVar("T")
R = TypeVar("R", bound=Message)


def make_channel(
    address: str,
    *,
    tls: bool = True,
    ca_file: str | os.PathLike[str] | None = None,
    ca_pem: str | bytes | None = None,
    client_cert: str | os.PathLike[str] | None = None,
    client_key: str | os.PathLike[str] | None = None,
) -> grpc.aio.Channel:
    """A channel to ``address``. With ``tls`` (the default) the server must chain to
    ``ca_pem`` or ``ca_file`` (the CA pinned in the client config), or to the system roots
    when neither is given, and its certificate must name the host of ``address``;
    ``client_cert``/``client_key`` (PEM files) are presented to a server that asks for one.
    ``tls=False`` is for a server started with ``--insecure`` only: tokens travel in clear.
    Its message size limits are ``ccs.message_size``'s, with or without TLS."""
    if not address:
        raise ValueError("address: must be host:port, got an empty string")
    if not tls:
        if ca_file is not None or ca_pem is not None or client_cert is not None:
            raise ValueError("ca_file/ca_pem/client_cert: only meaningful with tls=True")
        return grpc.aio.insecure_channel(address, options=CLIENT_OPTIONS)
    if ca_file is not None and ca_pem is not None:
        raise ValueError("ca_file and ca_pem: give one or the other")
    if (client_cert is None) != (client_key is None):
        raise ValueError("client_cert and client_key: give both or neither")
    roots = (Path(ca_file).expanduser().read_bytes() if ca_file is not None
             else ca_pem.encode() if isinstance(ca_pem, str) else ca_pem)
    chain = Path(client_cert).expanduser().read_bytes() if client_cert is not None else None
    key = Path(client_key).expanduser().read_bytes() if client_key is not None else None
    return grpc.aio.secure_channel(
        address, grpc.ssl_channel_credentials(root_certificates=roots, private_key=key, certificate_chain=chain),
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
        self.secrets = api_pb2_grpc.SecretServiceStub(channel)
        self.registries = api_pb2_grpc.RegistryServiceStub(channel)
        self.configs = api_pb2_grpc.ConfigServiceStub(channel)
        self.triggers = triggers_pb2_grpc.TriggerServiceStub(channel)

    async def unary(self, method: Any, request: Message, response_type: type[R], *, timeout: float | None = None) -> R:
        """Call a unary RPC; ``response_type`` only types the result for the checker. ``timeout``:
        this call's own deadline (one that waits for an agent), instead of the client's."""
        try:
            response = await method(request, metadata=self.metadata,
                                    timeout=timeout if timeout is not None and self.timeout is not None
                                    else self.timeout)
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
