"""A cancelled watch ends even when grpc eats the cancel (ccs/cancellation.py raise_if_cancelled).

grpc.aio can swallow the CancelledError thrown into a task that awaits a stream read: the read
then ends, or fails with the RPC's error. `ccs events -f` hung on Ctrl-C in one CI run that
way: the watch took the end for a dropped stream and reconnected. Here the stand-in call does
exactly what grpc does, every time, so the test does not depend on where the cancel lands.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import grpc
import pytest

from ccs._transport import Transport
from ccs.events import Events


class SwallowingCall:
    """A server-streaming call that never yields and, when its reader is cancelled, ends the
    stream (``ends``) or fails it with UNAVAILABLE instead of letting the cancel through."""

    opened = 0
    first = asyncio.Event()  # set once a reader is blocked in a read

    def __init__(self, ends: bool) -> None:
        self.ends = ends
        SwallowingCall.opened += 1

    def __aiter__(self) -> AsyncIterator[Any]:
        return self._read()

    async def _read(self) -> AsyncIterator[Any]:
        try:
            SwallowingCall.first.set()  # the reader is now blocked in the stream's read
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            if not self.ends:
                raise _Unavailable() from None
            return  # swallowed: the stream just ends
        yield  # pragma: no cover - makes this an async generator

    def cancel(self) -> None:
        pass


class _Unavailable(grpc.RpcError):
    def code(self) -> grpc.StatusCode:
        return grpc.StatusCode.UNAVAILABLE

    def details(self) -> str:
        return "Stream removed"


class StubTransport(Transport):
    def __init__(self, ends: bool) -> None:  # no channel: only stream() is used
        self.metadata: tuple[tuple[str, str], ...] = ()
        self.events = type("Stub", (), {"Watch": lambda _s, request, metadata: SwallowingCall(ends)})()


@pytest.mark.parametrize("ends", [True, False], ids=["stream-ends", "stream-fails-unavailable"])
async def test_a_cancelled_watch_ends_even_when_grpc_swallows_the_cancel(ends: bool) -> None:
    SwallowingCall.opened = 0
    SwallowingCall.first = asyncio.Event()
    events = Events(StubTransport(ends))

    async def follow() -> None:
        async for _ in events.watch("c", from_revision=5, retry_initial=0.0, retry_max=0.0):
            pass

    task = asyncio.create_task(follow())
    await SwallowingCall.first.wait()
    task.cancel()
    done, _ = await asyncio.wait({task}, timeout=10)  # a bound for a failing run, not a figure
    assert task in done, f"the watch kept reconnecting ({SwallowingCall.opened} streams opened)"
    assert task.cancelled()
    assert SwallowingCall.opened == 1
