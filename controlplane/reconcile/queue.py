"""A work queue of keys: per-key serial, parallel across keys, backoff per key.

Semantics follow client-go's rate-limited work queue: a key is never processed by two
workers at once; adding a key that is being processed marks it dirty so it runs again
right after; failures back off exponentially per key (reset on success); a reconciler
may ask to run again after a delay.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import structlog

log = structlog.get_logger("ccs.queue")


@dataclass(frozen=True)
class Result:
    """What a reconcile pass asks for next: nothing, or another pass after ``requeue_after`` s."""

    requeue_after: float | None = None


class PermanentError(Exception):
    """Retrying will not help (bad data); logged once, not requeued."""


Reconcile = Callable[[str], Awaitable[Result]]


class WorkQueue:
    def __init__(
        self,
        reconcile: Reconcile,
        *,
        workers: int = 4,
        base_delay: float = 0.05,
        max_delay: float = 30.0,
        name: str = "queue",
    ) -> None:
        self._reconcile = reconcile
        self._workers = workers
        self._base, self._max = base_delay, max_delay
        self._name = name
        self._queue: asyncio.Queue[str] = asyncio.Queue()
        self._queued: set[str] = set()
        self._active: set[str] = set()
        self._dirty: set[str] = set()
        self._failures: dict[str, int] = {}
        self._timers: dict[str, asyncio.TimerHandle] = {}
        self._tasks: list[asyncio.Task[None]] = []
        self.passes = 0

    def depth(self) -> int:
        """Keys waiting for a worker (not those being processed, nor those due later)."""
        return len(self._queued)

    def add(self, key: str) -> None:
        if key in self._active:
            self._dirty.add(key)
            return
        if key in self._queued:
            return
        self._queued.add(key)
        self._queue.put_nowait(key)

    def add_after(self, key: str, delay: float) -> None:
        if delay <= 0:
            self.add(key)
            return
        loop = asyncio.get_running_loop()
        existing = self._timers.get(key)
        when = loop.time() + delay
        if existing is not None:
            if existing.when() <= when:
                return
            existing.cancel()
        self._timers[key] = loop.call_at(when, self._fire, key)

    def _fire(self, key: str) -> None:
        self._timers.pop(key, None)
        self.add(key)

    def start(self) -> None:
        for i in range(self._workers):
            self._tasks.append(asyncio.create_task(self._worker(), name=f"{self._name}-{i}"))

    async def stop(self) -> None:
        for t in self._tasks:
            t.cancel()
        for t in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await t
        self._tasks.clear()
        for h in self._timers.values():
            h.cancel()
        self._timers.clear()

    def backoff(self, failures: int) -> float:
        delay: float = min(self._base * (2.0 ** (failures - 1)), self._max)
        return delay * (0.8 + 0.4 * random.random())

    async def _worker(self) -> None:
        while True:
            key = await self._queue.get()
            self._queued.discard(key)
            self._active.add(key)
            try:
                result = await self._reconcile(key)
            except asyncio.CancelledError:
                raise
            except PermanentError as e:
                log.error("reconcile failed permanently", queue=self._name, key=key, error=str(e))
                self._failures.pop(key, None)
            except Exception as e:
                n = self._failures.get(key, 0) + 1
                self._failures[key] = n
                delay = self.backoff(n)
                log.warning("reconcile failed; backing off", queue=self._name, key=key,
                            error=f"{type(e).__name__}: {e}", attempt=n, retry_in=round(delay, 2))
                self.add_after(key, delay)
            else:
                self._failures.pop(key, None)
                if result.requeue_after is not None:
                    self.add_after(key, result.requeue_after)
            finally:
                self.passes += 1
                self._active.discard(key)
                if key in self._dirty:
                    self._dirty.discard(key)
                    self.add(key)
