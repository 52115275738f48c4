"""The HTTPS endpoint: a starlette app served by uvicorn inside ccs-server's own asyncio loop.

Why inside the loop (``uvicorn.Server.serve()`` as a task, not ``uvicorn.run`` in a thread or
a process): the handlers call the same servicers, etcd client and informer the gRPC API uses,
which belong to this loop; a second loop would need its own etcd connection and could not share
the servicers' caches, and a second process would be a second server to supervise. uvicorn's
signal handling is left out (ccs-server handles SIGTERM and stops it with the rest).

TLS: the API port's certificate (``--tls-cert`` or the one the cluster CA issues, renewed like
it): the PEMs are loaded into one ``ssl.SSLContext`` (through a private temporary file, removed
at once: Python's ``ssl`` loads keys from files only), and reloaded into the same context when
the certificate changes, so new connections get the new one. No client certificate is asked
for, even with ``--client-ca``: a webhook sender (GitHub) has none; each route authenticates its
calls itself (triggers: an HMAC signature).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
import ssl
import tempfile
from collections.abc import Callable, Generator, Sequence
from pathlib import Path

import structlog
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import BaseRoute

from controlplane.replicas import advertised_host, join_host_port

log = structlog.get_logger("ccs.http")

#: How often the certificate is checked for renewal (the gRPC port checks at each handshake).
RELOAD_EVERY = 600.0
OFF = ("off", "none", "")


def parse_listen(value: str) -> tuple[str, int] | None:
    """``--http-listen``: ``HOST:PORT``, ``:PORT`` (every address) or ``off``; None when off.
    ValueError naming the problem otherwise."""
    if value.strip().lower() in OFF:
        return None
    host, sep, port = value.rpartition(":")
    if not sep or not port.isdigit() or not 0 <= int(port) <= 65535:
        raise ValueError(f"{value!r} is not HOST:PORT, :PORT or off")
    host = host.strip("[]") or "0.0.0.0"
    return host, int(port)


async def _not_found(request: Request, exc: Exception) -> JSONResponse:
    return JSONResponse({"error": f"no route {request.method} {request.url.path}"}, status_code=404)


async def _method_not_allowed(request: Request, exc: Exception) -> JSONResponse:
    return JSONResponse({"error": f"{request.method} not allowed on {request.url.path}"}, status_code=405)


def build_app(routes: Sequence[BaseRoute]) -> Starlette:
    """One app for every feature's routes; errors answer JSON, never a stack trace."""
    return Starlette(routes=list(routes), exception_handlers={404: _not_found, 405: _method_not_allowed})


def ssl_context(key_pem: bytes, chain_pem: bytes, ctx: ssl.SSLContext | None = None) -> ssl.SSLContext:
    ctx = ctx or ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    with tempfile.TemporaryDirectory(prefix="ccs-http-tls-") as d:  # 0700, removed at once
        path = Path(d) / "tls.pem"
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as f:
            f.write(key_pem + b"\n" + chain_pem)
        ctx.load_cert_chain(path)
    return ctx


class _Server(uvicorn.Server):
    """uvicorn without its signal handlers: it would replace ccs-server's SIGTERM handler (it
    installs its own with ``signal.signal`` on the main thread); ccs-server stops it instead."""

    @contextlib.contextmanager
    def capture_signals(self) -> Generator[None, None, None]:
        yield


class HttpsEndpoint:
    """uvicorn serving ``app`` on ``host:port`` with the PEMs ``pems()`` returns (None: plaintext,
    for ``--insecure``)."""

    def __init__(self, app: Starlette, host: str, port: int,
                 pems: Callable[[], tuple[bytes, bytes]] | None) -> None:
        self.app, self.host, self.port, self.pems = app, host, port, pems
        self.server: uvicorn.Server | None = None
        self._tasks: list[asyncio.Task[None]] = []
        self._pems: tuple[bytes, bytes] | None = None
        self._ctx: ssl.SSLContext | None = None

    async def start(self) -> int:
        """Listen; the port bound (a port of 0 picks one). Raises if it cannot listen."""
        # httptools, not h11: its C parser costs a fraction of h11's pure Python per request
        # (tests/bench/triggers.py; a declared dependency, so "auto" would pick it too: named
        # here so a missing one fails the start instead of quietly slowing every call).
        config = uvicorn.Config(self.app, host=self.host, port=self.port, log_config=None, access_log=False,
                                lifespan="off", server_header=False, proxy_headers=False, http="httptools")
        config.load()
        if self.pems is not None:
            self._pems = await asyncio.to_thread(self.pems)
            self._ctx = ssl_context(*self._pems)
            config.ssl = self._ctx
        # The socket is bound here, not by uvicorn: it answers a bind error with sys.exit, which
        # would end the whole process from inside the loop; this says which flag to change.
        # proto=IPPROTO_TCP, not the default 0: asyncio sets TCP_NODELAY only on sockets that say
        # they are TCP (base_events._set_nodelay), and the accepted ones inherit it. Without it
        # Nagle held every response's body until the caller's delayed ACK of its headers came:
        # 40 ms on each call of a kept-alive connection (tests/bench/triggers.py showed 44 ms
        # for a bare 404, the handler taking 1).
        sock = socket.socket(socket.AF_INET6 if ":" in self.host else socket.AF_INET, socket.SOCK_STREAM,
                             socket.IPPROTO_TCP)
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.bind((self.host, self.port))
        except OSError as e:
            sock.close()
            raise RuntimeError(f"cannot listen on {self.host}:{self.port} (--http-listen): {e.strerror}") from None
        self.port = sock.getsockname()[1]
        server = _Server(config)
        self.server = server
        task = asyncio.create_task(server.serve(sockets=[sock]))
        self._tasks.append(task)
        while not server.started:
            if task.done():
                with contextlib.suppress(BaseException):
                    task.result()
                raise RuntimeError(f"cannot serve on {self.host}:{self.port} (--http-listen); see the log")
            await asyncio.sleep(0.01)
        if self.pems is not None:
            self._tasks.append(asyncio.create_task(self._reload_forever()))
        return self.port

    async def _reload_forever(self) -> None:
        assert self.pems is not None and self._ctx is not None
        while True:
            await asyncio.sleep(RELOAD_EVERY)
            try:
                pems = await asyncio.to_thread(self.pems)
                if pems != self._pems:
                    ssl_context(*pems, ctx=self._ctx)
                    self._pems = pems
                    log.info("HTTPS certificate reloaded")
            except Exception as e:
                log.error("HTTPS certificate reload failed; serving the current one", error=str(e))

    async def stop(self) -> None:
        for t in self._tasks[1:]:
            t.cancel()
        if self.server is not None:
            self.server.should_exit = True
        if self._tasks:
            with contextlib.suppress(Exception, asyncio.CancelledError):
                async with asyncio.timeout(10):
                    await self._tasks[0]


def public_url(host: str, port: int, tls: bool, advertise: Sequence[str], interfaces: Sequence[str]) -> str:
    """The URL clients reach the port at: the advertised host (as for the API port), this port."""
    public = advertised_host(f"{host}:{port}", advertise, interfaces)
    return f"{'https' if tls else 'http'}://{join_host_port(public, port)}"
