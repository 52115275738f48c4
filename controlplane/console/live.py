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

The stream watches etcd, but a page reads this server's cache (the informer), which applies
etcd's changes a little later - seconds on a loaded machine, beyond the bound a list waits for
it. A ``change`` sent before the cache has the revision makes the page re-read the state from
before it, and when nothing changes afterwards nothing corrects the page (a console test saw a
routes page stay a step behind for two minutes). So each ``change`` waits until this server's
cache has applied its revision (``settled``); if that takes longer than ``SETTLE_WAIT``, the
event goes anyway and another follows ``RESIGNAL`` seconds later, until one is sent settled.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable

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
SETTLE_WAIT = 5.0
RESIGNAL = 1.0

#: ``settled(revision, timeout)``: True once this server's cache has applied ``revision``
#: (:meth:`controlplane.informer.Informer.caught_up`), False if it had not within ``timeout``.
Settled = Callable[[int, float], Awaitable[bool]]


def routes(api: Loopback, stopping: asyncio.Event, settled: Settled) -> list[Route]:
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
        events = _events(client.events.watch(cluster, start), start, stopping, settled)
        return StreamingResponse(events, media_type="text/event-stream",
                                 headers={"cache-control": "no-store", "x-accel-buffering": "no"})

    return [Route("/console/c/{cluster}/live", live, methods=["GET"])]


async def _events(
    watch: AsyncIterator[object], start: int, stopping: asyncio.Event, settled: Settled
) -> AsyncIterator[str]:
    """``change`` events from the watch, coalesced, each sent once this server's cache has its
    revision (see the module docstring); a comment every ``KEEPALIVE`` seconds; the end when
    ``stopping`` is set (the browser reconnects, to another replica or this one again)."""
    changed = asyncio.Event()
    revision = 0

    async def follow() -> None:
        nonlocal revision
        async for resp in watch:
            # One response per etcd revision (Store.watch splits etcd's batches by revision).
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
            target = revision
            applied = await settled(target, SETTLE_WAIT)
            yield f"event: change\ndata: {target}\n\n"
            if not applied:
                await asyncio.sleep(RESIGNAL)
                changed.set()  # the page may have read the cache from before it: say it again
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
