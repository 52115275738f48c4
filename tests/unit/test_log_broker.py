"""The server's log broker with several streams from one agent (issue 12: an agent keeps a relay
to every replica it knows, and may know one replica under two addresses). Two streams of one
node must not end each other; requests go to the newest open one."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

import pytest

from ccs.v1 import agent_pb2
from controlplane.dispatcher.logs_relay import AgentNotConnected, LogBroker


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
