"""``AnsweredStream``: requests and their answers in order on one open stream (the agent's
heartbeats). The client-level behaviour against a real grpc.aio server is in
``test_agent_heartbeat_stream.py``; here, against a scripted call, what needs exact timing."""

from __future__ import annotations

import asyncio

import grpc.aio
import pytest

from nodeagent.answered_stream import AnsweredStream, AnswerTimeout, StreamEnded


class ScriptedCall:
    """A stream-stream call whose answers the test gives (``answers``); writes are kept."""

    def __init__(self) -> None:
        self.answers: asyncio.Queue[object] = asyncio.Queue()
        self.written: list[str] = []
        self.cancelled = False

    async def write(self, request: str) -> None:
        self.written.append(request)

    async def read(self) -> object:
        return await self.answers.get()

    def cancel(self) -> None:
        self.cancelled = True


async def settle() -> None:
    for _ in range(10):
        await asyncio.sleep(0)


async def test_a_caller_cancelled_as_its_answer_comes_is_cancelled_all_the_same() -> None:
    """On Python 3.11, ``asyncio.wait_for`` returned the result of a future completed in the
    same turn as the caller's cancellation, and the cancellation was lost: the agent's session
    task went on, and ``Agent.stop`` waited for ever (3 runs in 5 of test_agent_e2e hung)."""
    stream: AnsweredStream[str, str] = AnsweredStream(ScriptedCall(), "test")
    try:
        asker = asyncio.create_task(stream.ask("beat", 5.0))
        await settle()  # written, waiting for its answer
        stream._waiting[0].set_result("answer")  # the answer and the cancel in one turn
        asker.cancel()
        with pytest.raises(asyncio.CancelledError):
            await asker
    finally:
        stream.close()


async def test_answers_are_matched_by_place_and_a_late_one_is_dropped() -> None:
    call = ScriptedCall()
    stream: AnsweredStream[str, str] = AnsweredStream(call, "test")
    try:
        with pytest.raises(AnswerTimeout):
            await stream.ask("one", 0.05)
        second = asyncio.create_task(stream.ask("two", 5.0))
        await settle()
        assert call.written == ["one", "two"]  # the first was written though nobody waits for it
        call.answers.put_nowait("answer to one")
        call.answers.put_nowait("answer to two")
        assert await second == "answer to two"
    finally:
        stream.close()


async def test_the_end_of_the_call_fails_the_waiting_and_every_later_request() -> None:
    call = ScriptedCall()
    stream: AnsweredStream[str, str] = AnsweredStream(call, "test")
    waiting = asyncio.create_task(stream.ask("one", 5.0))
    await settle()
    call.answers.put_nowait(grpc.aio.EOF)
    with pytest.raises(StreamEnded):
        await waiting
    with pytest.raises(StreamEnded):
        await stream.ask("two", 5.0)
    stream.close()
    assert call.cancelled
