"""The server's log broker with several streams from one agent (issue 12: an agent keeps a relay
to every replica it knows, and may know one replica under two addresses). Two streams of one
node must not end each other; requests go to the newest open one."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

import pytest

from ccs.v1 import agent_pb2
from controlplane.dispatcher.logs_relay import (
    CHUNK_OVERHEAD,
    LOGS_BACKLOG_BYTES,
    AgentNotConnected,
    ClientTooSlow,
    LogBroker,
)


class FakeAgent:
    """One agent-side stream: answers every request with its own name, until closed."""

    def __init__(self, broker: LogBroker, name: str) -> None:
        self.name = name
        self.chunks: asyncio.Queue[agent_pb2.LogChunk | None] = asyncio.Queue()
        self.requests = broker.agent_channel("c", "n1", self._chunks())
        self.task = asyncio.create_task(self._serve())
        self.ended = False

    async def _chunks(self) -> AsyncIterator[agent_pb2.LogChunk]:
        while (chunk := await self.chunks.get()) is not None:
            yield chunk

    async def _serve(self) -> None:
        async for req in self.requests:
            if not req.cancel:
                await self.chunks.put(agent_pb2.LogChunk(request_id=req.request_id, data=self.name.encode(), eof=True))
        self.ended = True

    async def close(self) -> None:
        await self.chunks.put(None)
        with contextlib.suppress(asyncio.CancelledError):
            await asyncio.wait_for(self.task, 5)


async def ask(broker: LogBroker) -> bytes:
    return b"".join([d async for d in broker.stream("c", "n1", "x", follow=False, tail=-1, since=0)])


async def test_two_streams_of_one_agent_coexist_and_the_newest_serves() -> None:
    broker = LogBroker()
    with pytest.raises(AgentNotConnected):
        await ask(broker)
    first = FakeAgent(broker, "first")
    await asyncio.sleep(0)  # let the stream register (no timing: one scheduling round)
    assert await ask(broker) == b"first"
    second = FakeAgent(broker, "second")
    await asyncio.sleep(0)
    assert await ask(broker) == b"second"
    assert not first.ended  # the newer stream did not end the older one
    await second.close()
    assert await ask(broker) == b"first"
    await first.close()
    with pytest.raises(AgentNotConnected):
        await ask(broker)


async def test_a_logs_reader_that_does_not_read_is_ended_with_client_too_slow_and_no_other() -> None:
    """The agent sends a request's lines faster than its reader takes them (here: the reader
    takes one and stops): at most LOGS_BACKLOG_BYTES wait, the next chunk ends that request
    (cancelled on the agent; the reader gets what was buffered, then ClientTooSlow), and the
    node's other requests go on. Before: the inbox buffered every chunk without a bound."""
    broker = LogBroker()
    up: asyncio.Queue[agent_pb2.LogChunk] = asyncio.Queue()
    down: list[agent_pb2.LogRequest] = []
    asked = asyncio.Queue[str]()

    async def chunks() -> AsyncIterator[agent_pb2.LogChunk]:
        while True:
            yield await up.get()

    async def agent() -> None:
        async for req in broker.agent_channel("c", "n1", chunks()):
            down.append(req)
            if not req.cancel:
                asked.put_nowait(req.request_id)

    task = asyncio.create_task(agent())
    await asyncio.sleep(0)  # the channel is open (one scheduling round, no timing)
    slow = broker.stream("c", "n1", "x", follow=True, tail=-1, since=0)
    first = asyncio.ensure_future(anext(slow))
    rid = await asked.get()
    piece = b"y" * (16 * 1024)
    sent = LOGS_BACKLOG_BYTES // (len(piece) + CHUNK_OVERHEAD) + 20
    for _ in range(sent):
        up.put_nowait(agent_pb2.LogChunk(request_id=rid, data=piece))
    other = asyncio.ensure_future(ask(broker))  # a second request on the same stream
    other_rid = await asked.get()  # asked after every slow chunk was put: they are delivered first
    up.put_nowait(agent_pb2.LogChunk(request_id=other_rid, data=b"fine", eof=True))
    assert await other == b"fine"
    assert (rid, True) in [(r.request_id, r.cancel) for r in down]
    got = [await first]
    with pytest.raises(ClientTooSlow, match="the client did not read the logs: 8 MiB waited unread"):
        async for data in slow:
            got.append(data)
    assert set(got) == {piece}
    assert len(got) * (len(piece) + CHUNK_OVERHEAD) <= LOGS_BACKLOG_BYTES + len(piece) + CHUNK_OVERHEAD
    assert len(got) < sent
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task
