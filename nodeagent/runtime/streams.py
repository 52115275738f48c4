"""Blocking iterators (Docker events, followed logs) -> async iterators, one thread each.

A followed log or the event stream blocks in a socket read for as long as nothing happens, so
it cannot run in a shared thread pool (it would pin a worker forever). Each stream gets its own
daemon thread that pushes items to the event loop with `call_soon_threadsafe`; a semaphore
bounds how far the thread may run ahead of a slow consumer. `aclose()` closes the socket
from the loop side, which unblocks the thread.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import Callable, Iterator
from typing import Any, Generic, TypeVar

T = TypeVar("T")

#: Opens the blocking stream: returns the iterator and a function that closes it from any thread.
Opener = Callable[[], tuple[Iterator[Any], Callable[[], None]]]


class _End:
    __slots__ = ("error",)

    def __init__(self, error: BaseException | None) -> None:
        self.error = error


class ThreadStream(Generic[T]):
    """An async iterator over a blocking stream read in a dedicated thread.

    `convert` maps a raw item to T, or None to skip it. `map_error` turns exceptions from the
    thread into the runtime's error tree. `on_end` makes a natural end of the stream an error
    (the event stream only ends when the engine goes away).
    """

    def __init__(
        self,
        opener: Opener,
        convert: Callable[[Any], T | None],
        *,
        name: str,
        map_error: Callable[[BaseException], BaseException] = lambda e: e,
        on_end: Callable[[], BaseException] | None = None,
        max_pending: int = 1024,
    ) -> None:
        self._opener = opener
        self._convert = convert
        self._map_error = map_error
        self._on_end = on_end
        self._name = name
        self._queue: asyncio.Queue[T | _End] = asyncio.Queue()
        self._slots = threading.Semaphore(max_pending)
        self._closed = threading.Event()
        self._lock = threading.Lock()
        self._closer: Callable[[], None] | None = None
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._done = False

    def __aiter__(self) -> ThreadStream[T]:
        return self

    async def __anext__(self) -> T:
        if self._done:
            raise StopAsyncIteration
        if self._thread is None:
            self._loop = asyncio.get_running_loop()
            self._thread = threading.Thread(target=self._run, name=self._name, daemon=True)
            self._thread.start()
        item = await self._queue.get()
        if isinstance(item, _End):
            self._done = True
            if item.error is not None:
                raise item.error
            raise StopAsyncIteration
        self._slots.release()
        return item

    async def aclose(self) -> None:
        """Stop the thread and drop whatever it had read; safe to call more than once."""
        self._done = True
        with self._lock:
            self._closed.set()
            closer, self._closer = self._closer, None
        self._slots.release()  # a thread waiting for room sees `closed` and leaves
        if closer is not None:
            await asyncio.to_thread(_quietly, closer)

    # ------------------------------------------------------------------ thread side

    def _run(self) -> None:
        error: BaseException | None = None
        try:
            iterator, closer = self._opener()
            with self._lock:
                if self._closed.is_set():
                    _quietly(closer)
                    return
                self._closer = closer
            for raw in iterator:
                if self._closed.is_set():
                    return
                item = self._convert(raw)
                if item is None:
                    continue
                self._slots.acquire()
                if self._closed.is_set():
                    return
                self._post(item)
            if self._on_end is not None and not self._closed.is_set():
                error = self._on_end()
        except Exception as exc:
            if not self._closed.is_set():
                error = self._map_error(exc)
        finally:
            self._post(_End(error))

    def _post(self, item: T | _End) -> None:
        assert self._loop is not None
        try:
            self._loop.call_soon_threadsafe(self._queue.put_nowait, item)
        except RuntimeError:  # the loop is closed: nobody is listening any more
            self._closed.set()


def _quietly(fn: Callable[[], None]) -> None:
    with contextlib.suppress(Exception):  # closing a broken socket is not worth reporting
        fn()
