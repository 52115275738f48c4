"""ThreadStream: blocking iterators handed to asyncio, closable while blocked."""

from __future__ import annotations

import asyncio
import queue
import threading
from collections.abc import Callable, Iterator

import pytest

from nodeagent.runtime.streams import ThreadStream

_STOP = object()


class Blocking:
    """A blocking iterator like a socket stream: next() waits until fed or closed."""

    def __init__(self) -> None:
        self.items: queue.Queue[object] = queue.Queue()
        self.closed = threading.Event()

    def __iter__(self) -> Iterator[object]:
        while True:
            item = self.items.get()
            if item is _STOP:
                return
            if isinstance(item, Exception):
                raise item
            yield item

    def close(self) -> None:
        self.closed.set()
        self.items.put(_STOP)

    def opener(self) -> Callable[[], tuple[Iterator[object], Callable[[], None]]]:
        return lambda: (iter(self), self.close)


async def test_items_flow_converted_and_filtered() -> None:
    source = Blocking()
    stream: ThreadStream[int] = ThreadStream(
        source.opener(), lambda x: None if x == "skip" else int(str(x)), name="t"
    )
    for item in ("1", "skip", "2"):
        source.items.put(item)
    source.items.put(_STOP)
    assert [x async for x in stream] == [1, 2]


async def test_aclose_unblocks_the_thread() -> None:
    source = Blocking()
    stream: ThreadStream[object] = ThreadStream(source.opener(), lambda x: x, name="t")
    source.items.put("first")
    assert await stream.__anext__() == "first"
    await stream.aclose()  # the thread is blocked in next(); closing must release it
    assert source.closed.is_set()
    with pytest.raises(StopAsyncIteration):
        await stream.__anext__()


async def test_errors_are_mapped_and_natural_end_can_be_an_error() -> None:
    source = Blocking()
    source.items.put(OSError("socket reset"))
    stream: ThreadStream[object] = ThreadStream(
        source.opener(), lambda x: x, name="t", map_error=lambda e: RuntimeError(f"mapped: {e}")
    )
    with pytest.raises(RuntimeError, match="mapped: socket reset"):
        await stream.__anext__()

    ended = Blocking()
    ended.items.put(_STOP)
    events: ThreadStream[object] = ThreadStream(
        ended.opener(), lambda x: x, name="t", on_end=lambda: ConnectionError("engine went away")
    )
    with pytest.raises(ConnectionError, match="engine went away"):
        await events.__anext__()


async def test_slow_consumer_bounds_the_reader() -> None:
    read: list[int] = []
    four_read = threading.Event()

    def opener() -> tuple[Iterator[object], Callable[[], None]]:
        def numbers() -> Iterator[object]:
            for n in range(100):
                read.append(n)
                if len(read) == 4:
                    four_read.set()
                yield n

        return numbers(), lambda: None

    stream: ThreadStream[object] = ThreadStream(opener, lambda x: x, name="t", max_pending=2)
    assert await stream.__anext__() == 0
    # 1 consumed + 2 pending + 1 read and waiting for room
    assert await asyncio.to_thread(four_read.wait, 10)
    await asyncio.sleep(0.1)  # give an unbounded reader every chance to run ahead
    assert len(read) == 4
    assert [await stream.__anext__() for _ in range(3)] == [1, 2, 3]
    await stream.aclose()
