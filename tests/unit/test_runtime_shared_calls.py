"""SharedCalls: callers of one key that overlap share one call; nothing outlives the call.

The calls here block on an event the test sets, so which callers overlap is decided by the
test, not by timing.
"""

from __future__ import annotations

import asyncio

import pytest

from nodeagent.runtime.shared_calls import SharedCalls


class Gate:
    """A call that counts its runs and finishes only when the test opens it."""

    def __init__(self) -> None:
        self.runs = 0
        self.opened = asyncio.Event()

    async def __call__(self) -> int:
        self.runs += 1
        await self.opened.wait()
        return self.runs


async def _until_waiting(tasks: list[asyncio.Task[int]]) -> None:
    """Let every task reach its await of the shared call (a few loop turns, no clock)."""
    for _ in range(5):
        await asyncio.sleep(0)
    assert not any(t.done() for t in tasks)


async def test_overlapping_callers_share_one_call() -> None:
    shared, call = SharedCalls(), Gate()
    callers = [asyncio.create_task(shared.run("image", call)) for _ in range(30)]
    await _until_waiting(callers)
    call.opened.set()
    assert await asyncio.gather(*callers) == [1] * 30
    assert call.runs == 1


async def test_a_caller_after_the_call_finished_asks_again() -> None:
    shared, call = SharedCalls(), Gate()
    call.opened.set()
    assert await shared.run("image", call) == 1
    assert await shared.run("image", call) == 2  # no cached answer
    assert call.runs == 2


async def test_keys_do_not_share() -> None:
    shared, first, second = SharedCalls(), Gate(), Gate()
    a = asyncio.create_task(shared.run("a", first))
    b = asyncio.create_task(shared.run("b", second))
    await _until_waiting([a, b])
    first.opened.set()
    second.opened.set()
    assert (await a, await b) == (1, 1)
    assert (first.runs, second.runs) == (1, 1)


async def test_an_error_reaches_every_caller() -> None:
    shared = SharedCalls()
    opened = asyncio.Event()
    runs = 0

    async def failing() -> int:
        nonlocal runs
        runs += 1
        await opened.wait()
        raise RuntimeError("engine unavailable")

    callers = [asyncio.create_task(shared.run("net", failing)) for _ in range(3)]
    await _until_waiting(callers)
    opened.set()
    results = await asyncio.gather(*callers, return_exceptions=True)
    assert [str(r) for r in results] == ["engine unavailable"] * 3
    assert runs == 1


async def test_a_cancelled_caller_does_not_cancel_the_call_for_the_others() -> None:
    shared, call = SharedCalls(), Gate()
    leaving = asyncio.create_task(shared.run("image", call))
    staying = asyncio.create_task(shared.run("image", call))
    await _until_waiting([leaving, staying])
    leaving.cancel()
    with pytest.raises(asyncio.CancelledError):
        await leaving
    call.opened.set()
    assert await staying == 1
    assert call.runs == 1
