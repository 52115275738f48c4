"""Request/answer pairs as messages on one open bidirectional stream, each answered in order.

Why (issue 15): grpc.aio takes in new calls at the pace of the server's event loop
(``tests/bench/grpc_accept.py``: 2-22 calls/s on a saturated loop), so at hundreds of nodes an
agent's one-call-per-heartbeat waited past its deadline before any handler ran: nodes were
declared down, and the rescheduling this caused added more work. Messages on an open stream
need no new call taken in. The agent's heartbeats go on such a stream
(``Dispatcher.Heartbeats``). Its status reports do not (see ``DispatcherClient.update_status``).

The server answers the requests of a stream in the order they came, one answer each, so an
answer is known by its place. A writer task puts requests on the stream and a reader task takes
answers off it, so a caller that stops waiting (its deadline passed) cancels neither: the
request still goes out, and its answer, when it comes, is matched to that caller's place and
dropped, never taken for a later request's. (Cancelling ``call.write`` itself, as a
``wait_for`` around it would, can leave the call half-written and end it.)

A failure of the call (the server ended it, the connection broke, an older server answered
UNIMPLEMENTED) fails every waiting request and every later one with that error: the owner then
closes the stream and opens another, or falls back to the unary call.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import deque
from typing import Any, Generic, TypeVar

import grpc
import grpc.aio

Request = TypeVar("Request")
Answer = TypeVar("Answer")


class AnswerTimeout(grpc.aio.AioRpcError):
    """No answer within the deadline: DEADLINE_EXCEEDED, as a unary call's would be, but the
    stream is not over (the next request may go on it)."""

    def __init__(self, deadline: float, what: str) -> None:
        super().__init__(grpc.StatusCode.DEADLINE_EXCEEDED, grpc.aio.Metadata(), grpc.aio.Metadata(),
                         f"no {what} answer within {deadline:g} s")


class StreamEnded(ConnectionError):
    """The server ended the stream (end of stream, or a close of ours)."""


class AnsweredStream(Generic[Request, Answer]):
    """One open stream-stream call; :meth:`ask` sends a request and waits for its answer.

    ``call`` is the stream-stream call as the stub makes it with no request iterator (this
    object writes to it). ``what`` names the stream in errors ("heartbeat")."""

    def __init__(self, call: Any, what: str) -> None:
        self._call = call
        self.what = what
        self._outbox: asyncio.Queue[Request] = asyncio.Queue()
        # Futures of the requests sent and not answered yet, in the order they were sent.
        self._waiting: deque[asyncio.Future[Answer]] = deque()
        self._error: BaseException | None = None
        loop = asyncio.get_running_loop()
        self._tasks = (loop.create_task(self._write()), loop.create_task(self._read()))

    async def ask(self, request: Request, deadline: float) -> Answer:
        """Send ``request``; its answer, or :class:`AnswerTimeout` after ``deadline`` seconds
        (the stream stays), or the call's error (the stream is over)."""
        if self._error is not None:
            raise self._error
        answer: asyncio.Future[Answer] = asyncio.get_running_loop().create_future()
        self._waiting.append(answer)
        self._outbox.put_nowait(request)  # the writer keeps this order: the n-th written is the n-th waiting
        try:
            # Not asyncio.wait_for: on Python 3.11 it returns the result of a future that
            # completes as the caller is cancelled, and swallows the cancellation (the agent's
            # session then never ended, and Agent.stop waited for ever).
            async with asyncio.timeout(deadline):
                return await answer
        except TimeoutError:
            # The timeout cancelled the future: the reader drops its answer when it comes.
            raise AnswerTimeout(deadline, self.what) from None

    @property
    def failed(self) -> bool:
        """Whether the call is over (every later request would fail with its error)."""
        return self._error is not None

    def close(self) -> None:
        """End the call (and fail whoever waits); idempotent."""
        self._fail(StreamEnded(f"the {self.what} stream was closed"))
        for task in self._tasks:
            task.cancel()
        self._call.cancel()

    async def _write(self) -> None:
        try:
            while True:
                request = await self._outbox.get()
                await self._call.write(request)
        except asyncio.CancelledError:
            raise
        except BaseException as exc:  # the call is over (its error is the reader's too)
            self._fail(exc)

    async def _read(self) -> None:
        try:
            while True:
                answer = await self._call.read()
                if answer is grpc.aio.EOF:
                    self._fail(StreamEnded(f"the server ended the {self.what} stream"))
                    return
                if not self._waiting:
                    self._fail(StreamEnded(f"an answer on the {self.what} stream to no request"))
                    self._call.cancel()
                    return
                waiter = self._waiting.popleft()
                if not waiter.done():  # done: its caller gave up waiting, the answer is dropped
                    waiter.set_result(answer)
        except asyncio.CancelledError:
            raise
        except BaseException as exc:  # the call's error (UNIMPLEMENTED from an older server, ...)
            self._fail(exc)

    def _fail(self, exc: BaseException) -> None:
        if self._error is None:
            self._error = exc
        while self._waiting:
            waiter = self._waiting.popleft()
            if not waiter.done():
                waiter.set_exception(self._error)
        with contextlib.suppress(Exception):
            # Nothing more is sent on a failed call.
            while True:
                self._outbox.get_nowait()
