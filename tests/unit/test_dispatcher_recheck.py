"""``rechecked``: a long node stream is checked again every period, and ends when the check does."""

from __future__ import annotations

import asyncio
import gc
from collections.abc import AsyncIterator

import pytest

from controlplane.dispatcher.recheck import rechecked


class Revoked(Exception):
    pass


async def test_a_quiet_stream_ends_when_the_check_fails_and_its_source_is_closed() -> None:
    closed = asyncio.Event()

    async def quiet() -> AsyncIterator[str]:
        try:
            yield "first"
            await asyncio.Event().wait()  # nothing more, ever (an idle relay)
            yield "never"
        finally:
            closed.set()

    checks: list[int] = []
    revoked = asyncio.Event()

    async def check() -> None:
        checks.append(1)
        if revoked.is_set():
            raise Revoked  # as the guard's abort ends the call

    stream = rechecked(quiet(), 0.01, check)
    assert await anext(stream) == "first"
    revoked.set()
    with pytest.raises(Revoked):
        await asyncio.wait_for(anext(stream), 10)  # a broken recheck fails here, not at the suite's timeout
    assert closed.is_set() and checks


async def test_items_pass_through_and_the_stream_ends_with_its_source() -> None:
    async def three() -> AsyncIterator[int]:
        for i in range(3):
            yield i

    async def ok() -> None:
        return None

    assert [i async for i in rechecked(three(), 60.0, ok)] == [0, 1, 2]


async def test_a_stream_that_ends_as_a_check_fails_leaves_no_unretrieved_error() -> None:
    """The wait for the next item ended (the source's end) in the same turn as a check that
    raised: its StopAsyncIteration is retrieved, not logged by asyncio as never retrieved."""
    loop = asyncio.get_running_loop()
    unretrieved: list[object] = []
    previous = loop.get_exception_handler()
    loop.set_exception_handler(lambda _loop, ctx: unretrieved.append(ctx.get("exception")))
    try:
        async def slow_empty() -> AsyncIterator[int]:
            await asyncio.sleep(0.05)  # ends after the check period has passed
            return
            yield 0  # pragma: no cover - makes this an async generator

        async def revoked() -> None:
            await asyncio.sleep(0.1)  # the source ends meanwhile
            raise Revoked

        with pytest.raises(Revoked):
            async for _ in rechecked(slow_empty(), 0.01, revoked):
                pass
        gc.collect()
        await asyncio.sleep(0)
    finally:
        loop.set_exception_handler(previous)
    assert not [e for e in unretrieved if isinstance(e, StopAsyncIteration)]
