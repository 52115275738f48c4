"""`SharedCalls`: concurrent callers asking the same question share one in-flight engine call.

Why: the agent starts up to 32 containers at once, and every one of them runs `prepare`
(is the image here? is the application network there?) right before its create. Those checks
ran one at a time under a per-image and a per-network lock, so the 30th create of a deploy
waited for 59 engine calls made in a row before it (about 1 s on a loaded 2-core node, with the
engine busy starting the first containers: `tests/bench/deploy.py`). The answer is the same
for all of them, so a caller that arrives while the same call is in flight now waits for that
call's answer instead of making its own ("single flight", Go's `x/sync/singleflight`).

Nothing is cached: a call that started after the previous one finished asks the engine again,
so a caller never gets an answer older than the moment it asked, only one that was still
being computed then. The call runs in a task of its own, so a caller that is cancelled (the
agent stopping, a newer plan) does not cancel it for the others; its outcome, error included,
goes to every caller waiting on it.

Hand-written (some 20 lines) rather than a library: the asyncio caches on PyPI (`async-lru`,
`aiocache`) cache results for a time, which is exactly what must not happen here, and none
is a dependency already.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Hashable
from typing import Any, TypeVar

T = TypeVar("T")


class SharedCalls:
    def __init__(self) -> None:
        self._flights: dict[Hashable, asyncio.Task[Any]] = {}

    async def run(self, key: Hashable, call: Callable[[], Awaitable[T]]) -> T:
        """The outcome of `call()`, or of the call already in flight under `key`."""
        flight = self._flights.get(key)
        if flight is None:
            flight = asyncio.ensure_future(call())
            self._flights[key] = flight
            flight.add_done_callback(lambda done: self._landed(key, done))
        result: T = await asyncio.shield(flight)
        return result

    def _landed(self, key: Hashable, flight: asyncio.Task[Any]) -> None:
        if self._flights.get(key) is flight:
            del self._flights[key]
        if not flight.cancelled():
            flight.exception()  # retrieved: every caller may have been cancelled meanwhile
