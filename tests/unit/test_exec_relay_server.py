"""The server's side of an exec on an agent's channel (controlplane.dispatcher.exec_relay): an
agent whose hello does not say it serves exec is refused before anything is sent; otherwise
the start, input and cancel go down under one request id, and chunks come back to it."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from ccs.v1 import agent_pb2
from controlplane.dispatcher.exec_relay import AgentTooOld, ExecFailed, ExecLine
from controlplane.dispatcher.logs_relay import AgentNotConnected, LogBroker

START = agent_pb2.AgentExecStart(container_id="abc", command=["true"])


async def connect(broker: LogBroker, hello: agent_pb2.LogChunk,
                  up: asyncio.Queue[agent_pb2.LogChunk]) -> tuple[asyncio.Task[None], list[agent_pb2.LogRequest]]:
    down: list[agent_pb2.LogRequest] = []
    ready = asyncio.Event()

    async def chunks() -> AsyncIterator[agent_pb2.LogChunk]:
        yield hello
        ready.set()
        while True:
            yield await up.get()

    async def agent() -> None:
        async for req in broker.agent_channel("c", "n1", chunks()):
            down.append(req)

    task = asyncio.create_task(agent())
    await ready.wait()
    await asyncio.sleep(0)  # the broker's pump has read the hello
    return task, down


async def test_an_agent_from_before_exec_is_refused_and_none_is_not_connected() -> None:
    broker = LogBroker()
    with pytest.raises(AgentNotConnected, match="the agent of node 'n1' is not connected to this server"):
        ExecLine(broker, "c", "n1", START)
    task, down = await connect(broker, agent_pb2.LogChunk(), asyncio.Queue())
    with pytest.raises(AgentTooOld, match="too old to run exec sessions"):
        ExecLine(broker, "c", "n1", START)
    task.cancel()
    assert down == []


async def test_a_session_on_the_channel() -> None:
    broker = LogBroker()
    up: asyncio.Queue[agent_pb2.LogChunk] = asyncio.Queue()
    task, down = await connect(broker, agent_pb2.LogChunk(serves_exec=True), up)
    line = ExecLine(broker, "c", "n1", START)
    line.send(agent_pb2.AgentExecInput(stdin=b"x"))
    up.put_nowait(agent_pb2.LogChunk(request_id=line.rid, data=b"out"))
    up.put_nowait(agent_pb2.LogChunk(request_id=line.rid, eof=True, exited=True, exit_code=4))
    got = [c async for c in line.chunks()]
    assert [(c.data, c.exited, c.exit_code) for c in got] == [(b"out", False, 0), (b"", True, 4)]
    line.close()
    await asyncio.sleep(0)
    assert [(r.request_id, r.HasField("exec"), r.exec_input.stdin, r.cancel) for r in down] == [
        (line.rid, True, b"", False), (line.rid, False, b"x", False), (line.rid, False, b"", True)]

    failing = ExecLine(broker, "c", "n1", START)
    up.put_nowait(agent_pb2.LogChunk(request_id=failing.rid, eof=True, error="busy",
                                     exec_failure=agent_pb2.EXEC_FAILURE_BUSY))
    with pytest.raises(ExecFailed, match="busy"):
        [c async for c in failing.chunks()]
    task.cancel()
