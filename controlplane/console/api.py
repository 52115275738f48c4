"""The console's way into the API: the SDK's ``AsyncClient`` over loopback, with the caller's token.

One gRPC channel to this server's own API port is shared by every request (made on first use:
the HTTPS port starts before the gRPC server); each request gets a client with its own token on
that channel, so the interceptors authenticate, authorize and audit it as they do a ``ccs``
command (see the package docstring for why). SDK errors become HTTP statuses here, in one place.
"""

from __future__ import annotations

from dataclasses import dataclass

import grpc.aio

from ccs import errors
from ccs._transport import make_channel
from ccs.client import AsyncClient

#: How long one console call may take (a page is a handful of calls).
CALL_TIMEOUT = 30.0

_STATUS: tuple[tuple[type[errors.CcsError], int], ...] = (
    (errors.Unauthenticated, 401), (errors.PermissionDenied, 403), (errors.NotFound, 404),
    (errors.InvalidArgument, 400), (errors.AlreadyExists, 409), (errors.Conflict, 409),
    (errors.FailedPrecondition, 409), (errors.MessageTooLarge, 413), (errors.Unavailable, 503),
    (errors.DeadlineExceeded, 504),
)


def http_status(e: errors.CcsError) -> int:
    """The HTTP status for an SDK error (502 for what has no closer match)."""
    for cls, status in _STATUS:
        if isinstance(e, cls):
            return status
    return 502


@dataclass
class Loopback:
    """Where this server's API listens, and how to trust it."""

    address: str  # host:port of the API port, as a client on this host reaches it
    tls: bool
    ca_pem: bytes | None = None
    _channel: grpc.aio.Channel | None = None

    def client(self, token: str) -> AsyncClient:
        if self._channel is None:
            self._channel = make_channel(self.address, tls=self.tls, ca_pem=self.ca_pem if self.tls else None)
        return AsyncClient(self.address, token, channel=self._channel, timeout=CALL_TIMEOUT)

    async def close(self) -> None:
        if self._channel is not None:
            await self._channel.close()
            self._channel = None
