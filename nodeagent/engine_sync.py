"""Keeping the executor in step with the engine: engine events mark containers dirty, a slow
periodic resync re-plans everything, and a broken event stream is followed by a resync (events
may have been missed while it was down).

Level-triggered, as the executor is: a missed event costs latency, never correctness, because
the next resync re-plans every assigned container from the engine's own listing.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable

import structlog

from .assignments import AssignmentBook
from .backoff import Backoff
from .executor import Executor
from .runtime import Runtime, RuntimeFailure


class EngineSync:
    def __init__(self, runtime: Runtime, executor: Executor, book: AssignmentBook, cluster: str, *,
                 period: float, log: structlog.typing.FilteringBoundLogger,
                 engine_back: Callable[[], None] | None = None) -> None:
        self.runtime, self.executor, self.book, self.cluster = runtime, executor, book, cluster
        self.period = period
        self.log = log
        self._engine_back = engine_back  # told when the engine answers again after a break

    async def resync(self, fenced: set[str] | None = None) -> None:
        """List the engine, re-plan every assigned container, and orphans once synced. For a
        complete set (``fenced`` given), the fenced ones and the orphans stop before anything
        starts (nodeagent.fence)."""
        present = self.executor.observe_all(await self.runtime.list_managed())
        assigned = self.book.ids()
        orphans = present - assigned if self.book.synced else set()
        if fenced is not None:
            self.executor.fence_off(fenced | orphans)
        for cid in assigned | orphans:
            self.executor.enqueue(cid)

    async def periodic(self) -> None:
        while True:
            await asyncio.sleep(self.period)
            try:
                await self.resync()
            except RuntimeFailure as exc:
                self.log.warning("resync failed", error=exc.reason)

    async def watch_events(self) -> None:
        """Mark containers dirty on engine events; after a broken event stream, resync."""
        backoff = Backoff(base=0.5, cap=10.0)
        while True:
            try:
                async for event in self.runtime.events():
                    backoff.reset()
                    if event.cluster != self.cluster or not event.container_id:
                        continue
                    if event.container_id in self.book.ids():
                        self.executor.enqueue(event.container_id)
            except RuntimeFailure as exc:
                self.log.warning("engine event stream broken", error=exc.reason)
            await asyncio.sleep(backoff.next())
            with contextlib.suppress(RuntimeFailure):
                await self.resync()  # events may have been missed
                if self._engine_back is not None:
                    self._engine_back()  # the engine answers again: it may have re-made its rules
