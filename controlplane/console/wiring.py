"""The console's routes put together, and its static files (htmx, its SSE extension, the CSS)."""

from __future__ import annotations

import asyncio

from starlette.routing import BaseRoute, Mount
from starlette.staticfiles import StaticFiles

from controlplane.console import actions, live, pages
from controlplane.console.api import Loopback
from controlplane.console.web import HERE


class Console:
    def __init__(self, api_address: str, *, tls: bool, ca_pem: bytes | None) -> None:
        self.api = Loopback(api_address, tls, ca_pem)
        self.tls = tls
        self.stopping = asyncio.Event()

    def routes(self) -> list[BaseRoute]:
        return [
            # The live stream before the pages: /console/c/{cluster}/{page} would take "live" too.
            *live.routes(self.api, self.stopping), *pages.routes(self.api), *actions.routes(self.api, secure=self.tls),
            Mount("/console/static", app=StaticFiles(directory=str(HERE / "static")), name="console-static"),
        ]

    def closing(self) -> None:
        """The server stops: end the live streams (uvicorn waits for open responses to end)."""
        self.stopping.set()

    async def stop(self) -> None:
        await self.api.close()
