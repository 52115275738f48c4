"""Check a node again, every period, while one of its long streams is open.

A node call is authenticated when it starts (:mod:`controlplane.pki.node_auth`); a stream that
lives as long as the agent (the session, the log relays to every replica) would outlive a
``ccs node revoke`` or ``node rm``. :func:`rechecked` passes a stream's items through and runs
``check`` every ``period`` seconds, busy or quiet; ``check`` ends the call the way the guard
does (it aborts), and the stream it wraps is closed with it.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import TypeVar

T = TypeVar("T")


async def rechecked(items: AsyncIterator[T], period: float,
                    check: Callable[[], Awaitable[object]]) -> AsyncIterator[T]:
    """``items``, with ``check`` awaited every ``period`` seconds until they end or it raises.

    The wait for the next item is a task kept across checks (not cancelled by a timeout):
    cancelling it would close ``items`` mid-wait.
    """
    loop = asyncio.get_running_loop()
    next_check = loop.time() + period
    waiting: asyncio.Future[T] | None = None
    try:
        while True:
            if waiting is None:
                waiting = asyncio.ensure_future(anext(items))
            done, _ = await asyncio.wait({waiting}, timeout=max(0.0, next_check - loop.time()))
            if loop.time() >= next_check:
                await check()
                next_check = loop.time() + period
            if not done:
                continue
            try:
                item = waiting.result()
            except StopAsyncIteration:
                return
            waiting = None
            yield item
    finally:
        if waiting is not None and not waiting.done():
            waiting.cancel()
            with contextlib.suppress(asyncio.CancelledError, StopAsyncIteration):
                await waiting
        elif waiting is not None and not waiting.cancelled():
            # Ended (the stream's end, StopAsyncIteration) as a check raised: retrieved, or
            # asyncio logs "Task exception was never retrieved" for every such stream.
            waiting.exception()
        aclose = getattr(items, "aclose", None)
        if aclose is not None:
            await aclose()
