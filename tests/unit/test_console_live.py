"""The console's live stream: a ``change`` is sent once this server's cache has the revision, and
is said again while the cache had not applied it (a page would otherwise keep a stale read)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass

import pytest

from controlplane.console import live


@dataclass
class Resp:
    revision: int


class Watch:
    """Yields the responses put in, then waits (a watch does not end by itself)."""

    def __init__(self) -> None:
        self.queue: asyncio.Queue[Resp] = asyncio.Queue()

    def __aiter__(self) -> Watch:
        return self

    async def __anext__(self) -> object:
        return await self.queue.get()


class Cache:
    """``settled`` as the informer answers it: True once ``applied`` reaches the revision."""

    def __init__(self) -> None:
        self.applied = 0
        self.asked: list[int] = []

    async def settled(self, revision: int, timeout: float) -> bool:
        self.asked.append(revision)
        return self.applied >= revision


async def _next(gen: AsyncIterator[str]) -> str:
    return await asyncio.wait_for(gen.__anext__(), 5)


@pytest.fixture(autouse=True)
def _fast(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(live, "COALESCE", 0.0)
    monkeypatch.setattr(live, "RESIGNAL", 0.0)


async def test_a_change_the_cache_has_is_sent_once() -> None:
    watch, cache, stopping = Watch(), Cache(), asyncio.Event()
    gen = live._events(watch, 5, stopping, cache.settled)
    assert await _next(gen) == "event: change\ndata: 5\n\n"
    cache.applied = 7
    await watch.queue.put(Resp(7))
    assert await _next(gen) == "event: change\ndata: 7\n\n"
    assert cache.asked == [7]
    stopping.set()
    rest = [line async for line in gen]
    assert all("change" not in line for line in rest)


async def test_a_change_the_cache_lacks_is_said_again_until_the_cache_has_it() -> None:
    watch, cache, stopping = Watch(), Cache(), asyncio.Event()
    gen = live._events(watch, 5, stopping, cache.settled)
    await _next(gen)
    await watch.queue.put(Resp(9))
    assert await _next(gen) == "event: change\ndata: 9\n\n"  # sent, though the cache lacks 9
    assert await _next(gen) == "event: change\ndata: 9\n\n"  # and said again
    cache.applied = 9
    assert await _next(gen) == "event: change\ndata: 9\n\n"  # this one is settled
    asked = len(cache.asked)
    assert cache.asked[-1] == 9 and asked >= 3
    stopping.set()
    rest = [line async for line in gen]
    assert all("change" not in line for line in rest)
    assert len(cache.asked) == asked  # nothing more once a settled change went out
