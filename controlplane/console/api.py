"""The console's way into the API: the SDK's ``AsyncClient`` over a private socket, with the caller's token.

ccs-server adds one more port to its own gRPC server for the console: a Unix socket in a
directory only the server's user can open (:class:`ConsoleSocket`). It is the same
``grpc.aio.Server`` as the API port - the same servicers, the same interceptors - so each console
request is authenticated, authorized and audited as a ``ccs`` command is (see the package
docstring for why). Why a socket of its own and not the API's TCP port: with ``--client-ca`` that
port wants a client certificate the console cannot have (the operator's CA signs them, and its
key is not the server's), and with ``--tls-cert`` the certificate need not name the address the
console would dial; a Unix socket needs neither, and no other host can reach it.

One channel is shared by every request (made on first use: the HTTPS port starts before the
gRPC server); each request gets a client with its own token on that channel. SDK errors become
HTTP statuses here, in one place.
"""

from __future__ import annotations

import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

import grpc.aio

from ccs import errors
from ccs._transport import make_channel
from ccs.client import AsyncClient

#: How long one console call may take (a page is a handful of calls).
CALL_TIMEOUT = 30.0

_STATUS: tuple[tuple[type[errors.CcsError], int], ...] = (
    (errors.Unauthenticated, 401), (errors.PermissionDenied, 403), (errors.NotFound, 404),
    (errors.InvalidArgument, 400), (errors.AlreadyExists, 409), (errors.Conflict, 409),
    (errors.FailedPrecondition, 409), (errors.MessageTooLarge, 413), (errors.RateLimited, 429),
    (errors.Unavailable, 503),
    (errors.DeadlineExceeded, 504),
)


def http_status(e: errors.CcsError) -> int:
    """The HTTP status for an SDK error (502 for what has no closer match)."""
    for cls, status in _STATUS:
        if isinstance(e, cls):
            return status
    return 502


class ConsoleSocket:
    """The console's own way into this server's gRPC server: ``unix:DIR/api.sock``, DIR made by
    ``mkdtemp`` (mode 0700: only the server's user can connect). Short, under the temp dir, so it
    fits a socket address's 108 bytes whatever ``--state-dir`` is."""

    def __init__(self) -> None:
        self.dir = Path(tempfile.mkdtemp(prefix="ccs-console-"))
        self.target = f"unix:{self.dir / 'api.sock'}"

    def add_to(self, server: grpc.aio.Server) -> None:
        """Listen on it too (before ``server.start()``); plaintext: it never leaves the host."""
        if not server.add_insecure_port(self.target):
            raise RuntimeError(f"cannot listen on {self.target} (the console's socket)")

    def remove(self) -> None:
        shutil.rmtree(self.dir, ignore_errors=True)


@dataclass
class Loopback:
    """Where the console reaches this server's API: its private socket's gRPC target."""

    target: str
    _channel: grpc.aio.Channel | None = None

    def client(self, token: str) -> AsyncClient:
        if self._channel is None:
            self._channel = make_channel(self.target, tls=False)
        return AsyncClient(self.target, token, channel=self._channel, timeout=CALL_TIMEOUT)

    async def close(self) -> None:
        if self._channel is not None:
            await self._channel.close()
            self._channel = None
