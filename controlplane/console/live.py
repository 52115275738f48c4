"""Live updates: ``GET /console/c/{cluster}/live`` is a server-sent event stream over the Watch RPC.

Why SSE and not a WebSocket: updates flow one way (server to page), SSE is plain HTTP through
the same port, cookie and proxies, the browser reconnects by itself, and htmx's SSE extension
turns an event into a re-fetch of the visible fragment with no code of ours in the page.

The stream says only *that* the cluster changed (``event: change``, the etcd revision as data;
once at once as it connects, so a page refreshes after a reconnect and nothing that changed while
it was away is missed); the page then asks for its fragment again, read with the same token and policy as any page, so
the stream leaks nothing a page would not show. A burst of changes (a deploy writes many keys)
is coalesced into one event per ``COALESCE`` seconds, so 2,000 containers turning running cost
a few re-renders, not 2,000.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

import structlog
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse
from starlette.routing import Route

from ccs import errors
from controlplane.console.api import Loopback
from controlplane.console.web import failed, sign_in_again, token_of

log = structlog.get_logger("ccs.console")

COALESCE = 0.15
KEEPALIVE = 15.0


def routes(api: Loopback, stopping: asyncio.Event) -> list[Route]:
    async def live(request: Request) -> Response:
        token = token_of(request)
        if not token:
            return sign_in_again(request)
        cluster = request.path_params["cluster"]
        client = api.client(token)
        try:
            start = await client.events.current_revision(cluster) + 1  # refused here, before the stream
        except errors.CcsError as e:
            return failed(request, e)
        events = _events(client.events.watch(cluster, start), start, stopping)
        return StreamingResponse(events, media_type="text/event-stream",
                                 headers={"cache-control": "no-store", "x-accel-buffering": "no"})

    return [Route("/console/c/{cluster}/live", live, methods=["GET"])]


async def _events(watch: AsyncIterator[object], start: int, stopping: asyncio.Event) -> AsyncIterator[str]:
    """``change`` events from the watch, coalesced; a comment every ``KEEPALIVE`` seconds; the
    end when ``stopping`` is set (the browser reconnects, to another replica or this one again)."""
    changed = asyncio.Event()
    revision = 0

    async def follow() -> None:
        nonlocal revision
        async for resp in watch:
            revision = int(getattr(resp, "revision", 0))
            changed.set()

    task = asyncio.create_task(follow())
    stop: asyncio.Task[bool] | None = None
    try:
        # A refresh at once, on every (re)connect: what changed between the page's read and
        # this watch's start, or while a dropped stream reconnected, is not missed.
        yield f"event: change\ndata: {start}\n\n"
        stop = asyncio.create_task(stopping.wait())
        while not task.done() and not stopping.is_set():
            wake = asyncio.create_task(changed.wait())
            await asyncio.wait({wake, stop, task}, timeout=KEEPALIVE, return_when=asyncio.FIRST_COMPLETED)
            wake.cancel()
            if stopping.is_set() or task.done():
                break
            if not changed.is_set():
                yield ": keepalive\n\n"
                continue
            await asyncio.sleep(COALESCE)
            changed.clear()
            yield f"event: change\ndata: {revision}\n\n"
        if task.done() and not task.cancelled() and task.exception() is not None:
            log.info("console live stream ended", error=str(task.exception()))
            yield "event: ended\ndata: the watch ended; reload the page\n\n"
    finally:
        if stop is not None:
            stop.cancel()
        task.cancel()
        with contextlib.suppress(BaseException):
            await task
        aclose = getattr(watch, "aclose", None)
        if aclose is not None:
            with contextlib.suppress(Exception):
                await aclose()
