"""The console's routes put together, and its static files (htmx, its SSE extension, the CSS)."""

from __future__ import annotations

import asyncio

import grpc.aio
from starlette.routing import BaseRoute, Mount
from starlette.staticfiles import StaticFiles

from controlplane.console import actions, live, pages
from controlplane.console.api import ConsoleSocket, Loopback
from controlplane.console.live import Settled
from controlplane.console.web import HERE


class Console:
    def __init__(self, grpc_server: grpc.aio.Server, *, tls: bool, settled: Settled) -> None:
        """``grpc_server``: this server's own (not started yet), which gets the console's socket;
        ``tls``: whether the HTTPS port is HTTPS (the cookie is then ``Secure``); ``settled``:
        this server's cache has applied a revision (the live stream waits for it)."""
        self.socket = ConsoleSocket()
        self.socket.add_to(grpc_server)
        self.api = Loopback(self.socket.target)
        self.tls = tls
        self.stopping = asyncio.Event()
        self.settled = settled

    def routes(self) -> list[BaseRoute]:
        return [
            # The live stream before the pages: /console/c/{cluster}/{page} would take "live" too.
            *live.routes(self.api, self.stopping, self.settled),
            *pages.routes(self.api),
            *actions.routes(self.api, secure=self.tls),
            Mount("/console/static", app=StaticFiles(directory=str(HERE / "static")), name="console-static"),
        ]

    def closing(self) -> None:
        """The server stops: end the live streams (uvicorn waits for open responses to end)."""
        self.stopping.set()

    async def stop(self) -> None:
        await self.api.close()
        self.socket.remove()
