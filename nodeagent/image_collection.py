"""When the agent collects images: every GC_PERIOD, and at once for a ``ccs node prune``.

Beside the heartbeats, never in their way: a collection is a task of its own (a slow engine
must not delay a heartbeat), at most one at a time, and its result (``NodeStatus.prune``) goes
out with the heartbeat after it ends. What is collected is :mod:`nodeagent.images`' business.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable, Coroutine
from typing import Any

from .images import GC_PERIOD


class ImageCollection:
    def __init__(self, collect: Callable[[int], Coroutine[Any, Any, None]]) -> None:
        self._collect = collect  # runs one collection answering a request number (0: periodic)
        self._next = time.monotonic() + GC_PERIOD
        self._task: asyncio.Task[None] | None = None

    def start_if_due(self, asked: int, answered: int) -> None:
        """Start one if a ``ccs node prune`` newer than the last answered is asked, or the period
        is over, and none is running."""
        if (asked > answered or time.monotonic() >= self._next) and (self._task is None or self._task.done()):
            self._next = time.monotonic() + GC_PERIOD
            self._task = asyncio.create_task(self._collect(max(asked, answered)), name="image-gc")

    async def pause(self, seconds: float) -> None:
        """Wait ``seconds``, or less when a running collection ends first (its answer then goes
        out with the next heartbeat at once)."""
        if self._task is not None and not self._task.done():
            await asyncio.wait({self._task}, timeout=seconds)
        else:
            await asyncio.sleep(seconds)

    async def close(self) -> None:
        """A collection under way stops with the agent."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._task
