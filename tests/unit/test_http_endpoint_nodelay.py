"""The HTTPS port's connections send at once (TCP_NODELAY), so no answer waits for a delayed ACK.

Without it (the port's socket was made with protocol 0, and asyncio sets TCP_NODELAY only on
sockets that say they are TCP) every answer on a kept-alive connection took 40 ms more than its
handler: Nagle held the body until the caller's delayed ACK of the headers. Read off the
accepted connection's own socket: a fact, not a timing.
"""

from __future__ import annotations

import asyncio
import socket

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse
from starlette.routing import Route

from controlplane.http.server import HttpsEndpoint


async def test_accepted_connections_have_tcp_nodelay() -> None:
    seen: list[int] = []

    async def hello(request: Request) -> PlainTextResponse:
        return PlainTextResponse("hi")

    endpoint = HttpsEndpoint(Starlette(routes=[Route("/", hello)]), "127.0.0.1", 0, None)
    port = await endpoint.start()
    try:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        await writer.drain()
        assert (await reader.readuntil(b"hi")).startswith(b"HTTP/1.1 200")
        assert endpoint.server is not None
        for conn in endpoint.server.server_state.connections:
            sock = conn.transport.get_extra_info("socket")
            seen.append(sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY))
        writer.close()
    finally:
        await endpoint.stop()
    assert seen and all(seen), seen
