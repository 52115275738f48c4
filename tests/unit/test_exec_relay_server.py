"""The server's side of an exec on an agent's channel (controlplane.dispatcher.exec_relay): an
agent whose hello does not say it serves exec is refused before anything is sent; otherwise
the start, input and cancel go down under one request id, and chunks come back to it."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from ccs.v1 import agent_pb2
from controlplane.dispatcher.exec_relay import (
    INPUT_IN_FLIGHT,
    OUTPUT_BACKLOG,
    AgentTooOld,
    ExecFailed,
    ExecLine,
)
from controlplane.dispatcher.logs_relay import AgentNotConnected, ClientTooSlow, LogBroker

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
    await line.send(agent_pb2.AgentExecInput(stdin=b"x"))
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


async def test_input_waits_until_earlier_input_left_so_the_outbox_stays_bounded() -> None:
    """A client writing stdin faster than the agent's stream takes it: at most INPUT_IN_FLIGHT
    pieces wait in the outbox and the sender waits (before: every piece was queued at once)."""
    broker = LogBroker()
    up: asyncio.Queue[agent_pb2.LogChunk] = asyncio.Queue()
    ready = asyncio.Event()

    async def chunks() -> AsyncIterator[agent_pb2.LogChunk]:
        yield agent_pb2.LogChunk(serves_exec=True)
        ready.set()
        while True:
            yield await up.get()

    stream = broker.agent_channel("c", "n1", chunks())  # the agent's stream, read only when this test says
    first = asyncio.ensure_future(anext(stream))
    await ready.wait()
    await asyncio.sleep(0)  # the pump has read the hello
    line = ExecLine(broker, "c", "n1", START)
    assert (await first).HasField("exec")
    pieces = INPUT_IN_FLIGHT * 3
    sent: list[int] = []

    async def client() -> None:
        for i in range(pieces):
            await line.send(agent_pb2.AgentExecInput(stdin=b"%d" % i))
            sent.append(i)

    writer = asyncio.create_task(client())
    for _ in range(10 * pieces):  # let the client run as far as it can
        await asyncio.sleep(0)
    outbox = broker.channel("c", "n1").outbox
    assert len(sent) == INPUT_IN_FLIGHT and outbox.qsize() == INPUT_IN_FLIGHT and not writer.done()
    got = []
    for _ in range(pieces):  # the agent reads: the client goes on, never more than the bound waiting
        got.append((await anext(stream)).exec_input.stdin)
        assert outbox.qsize() <= INPUT_IN_FLIGHT
    assert got == [b"%d" % i for i in range(pieces)]
    await writer
    line.close()
    await stream.aclose()  # type: ignore[attr-defined]


async def test_a_client_that_does_not_read_the_output_ends_its_session_and_no_other() -> None:
    """Output for a client that does not read: OUTPUT_BACKLOG chunks wait, the next one ends
    that session (cancelled on the agent, the reason to the client after what was buffered),
    and the channel goes on serving the node's other sessions (before: the queue grew without
    bound)."""
    broker = LogBroker()
    up: asyncio.Queue[agent_pb2.LogChunk] = asyncio.Queue()
    task, down = await connect(broker, agent_pb2.LogChunk(serves_exec=True), up)
    slow = ExecLine(broker, "c", "n1", START)
    other = ExecLine(broker, "c", "n1", START)
    for i in range(OUTPUT_BACKLOG + 10):
        up.put_nowait(agent_pb2.LogChunk(request_id=slow.rid, data=b"%d" % i))
    up.put_nowait(agent_pb2.LogChunk(request_id=other.rid, data=b"fine"))
    up.put_nowait(agent_pb2.LogChunk(request_id=other.rid, eof=True, exited=True))
    assert [c.data async for c in other.chunks()] == [b"fine", b""]
    assert slow._queue.qsize() == OUTPUT_BACKLOG + 1  # what was buffered, and the end
    assert (slow.rid, True) in [(r.request_id, r.cancel) for r in down]
    got = []
    with pytest.raises(ClientTooSlow, match=f"the client did not read the output: {OUTPUT_BACKLOG} pieces"):
        async for c in slow.chunks():
            got.append(c.data)
    assert got == [b"%d" % i for i in range(OUTPUT_BACKLOG)]
    slow.close()
    other.close()
    task.cancel()
