"""The node's DNS resolver: asyncio UDP and TCP servers on the resolver address, port 53.

Answers come from `names.answer` (pure); everything else is forwarded. Why dnspython: it is
the reference DNS library for Python (wire format, EDNS, truncation, asyncio queries with
timeouts), so the resolver owns only the policy, not a DNS codec; the alternatives either do
their own I/O loop (dnslib's server) or are not asyncio (the stdlib has no DNS at all).

Forwarding goes to the upstreams of the asking container (`Upstreams.for_source`): the
Compose `dns` servers of its service when it sets them, else the nameservers of this host's
/etc/resolv.conf (re-read when it changes). The resolver runs in the host's namespace, so a
loopback stub resolver there (127.0.0.53) is reachable too. No upstream answering within the
timeout: SERVFAIL, never NXDOMAIN (the name may well exist).

Port 53 is not a choice: Docker's embedded DNS forwards to port 53 of the configured servers.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import struct
from collections.abc import Callable, Coroutine, Sequence
from pathlib import Path
from typing import Any

import dns.asyncquery
import dns.exception
import dns.message
import structlog

from .names import NameTable, answer, failure, parse_resolv_conf, to_wire, udp_limit

FORWARD_TIMEOUT = 2.0  # per upstream; Docker's embedded DNS gives up after 4 s
MAX_UPSTREAMS = 3  # as glibc's MAXNS
MAX_INFLIGHT = 512  # UDP queries being answered at once; more are dropped (the client retries)
TCP_IDLE = 10.0  # seconds a TCP connection may sit without a query

ServiceDns = Callable[[str], Sequence[str]]


class Upstreams:
    """Where a query that is not ours goes, per asking container."""

    def __init__(
        self,
        *,
        own_address: str,
        resolv_conf: Path = Path("/etc/resolv.conf"),
        servers: Sequence[str] | None = None,
        service_dns: ServiceDns | None = None,
    ) -> None:
        self._own = own_address
        self._path = resolv_conf
        self._fixed = list(servers) if servers is not None else None
        self._service_dns = service_dns
        self._cached: tuple[float, list[str]] = (-1.0, [])

    def for_source(self, source: str) -> list[str]:
        # The Compose `dns` servers of the asking container's service when it sets them (the
        # agent's `service_dns`: source address -> that service's servers), else the host's.
        # This is the one place that decides.
        if self._service_dns is not None:
            chosen = [s for s in self._service_dns(source) if s != self._own]
            if chosen:
                return chosen[:MAX_UPSTREAMS]
        return self.host()[:MAX_UPSTREAMS]

    def host(self) -> list[str]:
        """This host's nameservers, without the resolver itself (that would loop)."""
        if self._fixed is not None:
            return self._fixed
        try:
            mtime = self._path.stat().st_mtime
        except OSError:
            return []
        if mtime != self._cached[0]:
            with contextlib.suppress(OSError):
                text = self._path.read_text(encoding="utf-8", errors="replace")
                self._cached = (mtime, parse_resolv_conf(text, skip=[self._own]))
        return self._cached[1]


def _host_port(server: str) -> tuple[str, int]:
    """`10.0.0.2`, `10.0.0.2:5353` or an IPv6 address (port 53)."""
    if server.count(":") == 1:
        host, _, port = server.partition(":")
        return host, int(port)
    return server.strip("[]"), 53


class Resolver:
    """Serve DNS on (address, port) from `table` (replaced whole by `update`)."""

    def __init__(
        self,
        address: str,
        upstreams: Upstreams,
        *,
        port: int = 53,
        log: structlog.typing.FilteringBoundLogger | None = None,
    ) -> None:
        self.address = address
        self.port = port
        self.upstreams = upstreams
        self.table = NameTable()
        self._log = log or structlog.get_logger("ccs.agent.resolver")
        self._udp: asyncio.DatagramTransport | None = None
        self._tcp: asyncio.Server | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self._turn = itertools.count()

    def update(self, table: NameTable) -> None:
        self.table = table

    @property
    def serving(self) -> bool:
        return self._udp is not None

    async def start(self) -> None:
        """Bind both sockets; OSError (address missing, port taken) leaves nothing bound."""
        loop = asyncio.get_running_loop()
        transport, _ = await loop.create_datagram_endpoint(
            lambda: _UDP(self), local_addr=(self.address, self.port), reuse_port=False
        )
        try:
            self._tcp = await asyncio.start_server(self._serve_tcp, self.address, self.port, reuse_address=True)
        except OSError:
            transport.close()
            raise
        self._udp = transport

    async def close(self) -> None:
        if self._udp is not None:
            self._udp.close()
            self._udp = None
        if self._tcp is not None:
            self._tcp.close()
            with contextlib.suppress(Exception):
                await self._tcp.wait_closed()
            self._tcp = None
        for task in list(self._tasks):
            task.cancel()

    # ------------------------------------------------------------------ answering

    async def respond(self, wire: bytes, source: str, *, tcp: bool) -> bytes | None:
        """The response bytes for one query from `source` (None: not even a DNS header)."""
        try:
            query = dns.message.from_wire(wire)
        except dns.exception.DNSException:
            return None
        limit = 65535 if tcp else udp_limit(query)
        mine = answer(query, source, self.table, rotate=next(self._turn))
        if mine is not None:
            return to_wire(mine, limit)
        return to_wire(await self._forward(query, source, tcp=tcp), limit)

    async def _forward(self, query: dns.message.Message, source: str, *, tcp: bool) -> dns.message.Message:
        for server in self.upstreams.for_source(source):
            host, port = _host_port(server)
            try:
                if tcp:
                    return await dns.asyncquery.tcp(query, host, timeout=FORWARD_TIMEOUT, port=port)
                return await dns.asyncquery.udp(query, host, timeout=FORWARD_TIMEOUT, port=port, ignore_unexpected=True)
            except (dns.exception.DNSException, OSError, ValueError) as exc:
                self._log.debug("upstream failed", upstream=server, error=str(exc) or type(exc).__name__)
        return failure(query)

    def _spawn(self, coro: Coroutine[Any, Any, None]) -> None:
        task = asyncio.create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _answer_udp(self, wire: bytes, addr: tuple[str, int]) -> None:
        response = await self.respond(wire, addr[0], tcp=False)
        if response is not None and self._udp is not None:
            self._udp.sendto(response, addr)

    def datagram(self, wire: bytes, addr: tuple[str, int]) -> None:
        if len(self._tasks) >= MAX_INFLIGHT:
            return
        self._spawn(self._answer_udp(wire, addr))

    async def _serve_tcp(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        source = str(writer.get_extra_info("peername")[0])
        try:
            while True:
                async with asyncio.timeout(TCP_IDLE):
                    (size,) = struct.unpack("!H", await reader.readexactly(2))
                    wire = await reader.readexactly(size)
                response = await self.respond(wire, source, tcp=True)
                if response is None:
                    break
                writer.write(struct.pack("!H", len(response)) + response)
                await writer.drain()
        except (asyncio.IncompleteReadError, TimeoutError, ConnectionError):
            pass
        finally:
            writer.close()
            with contextlib.suppress(Exception):
                await writer.wait_closed()


class _UDP(asyncio.DatagramProtocol):
    def __init__(self, resolver: Resolver) -> None:
        self._resolver = resolver

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        self._resolver.datagram(data, addr)


__all__ = ["Resolver", "ServiceDns", "Upstreams"]
