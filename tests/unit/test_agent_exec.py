"""`ccs exec` on the agent's relay channel (nodeagent.exec_sessions), with a scripted session in
place of the engine's exec (the real one: tests/integration/test_exec.py): input applied in
order, output and the exit going up, the node's limit, named failures, and a cancel that ends
the session (its command killed)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Sequence
from typing import Any

from ccs.v1 import agent_pb2
from nodeagent.exec_sessions import ExecServer, ExecSlots
from nodeagent.logs_relay import LogsRelay
from nodeagent.runtime.types import ExecEnd, ExecNotRunning


class Session:
    """Echoes stdin to stdout once stdin closes, then exits 3; records what it was asked."""

    def __init__(self) -> None:
        self.ops: list[Any] = []
        self.stdin = bytearray()
        self.eof = asyncio.Event()
        self.closed = False

    async def output(self) -> AsyncIterator[tuple[int, bytes]]:
        await self.eof.wait()
        yield 1, bytes(self.stdin)
        yield 2, b"done\n"

    async def write(self, data: bytes) -> None:
        self.ops.append(("write", data))
        self.stdin += data

    async def close_stdin(self) -> None:
        self.ops.append("close_stdin")
        self.eof.set()

    async def resize(self, rows: int, cols: int) -> None:
        self.ops.append(("resize", rows, cols))

    async def wait(self) -> ExecEnd:
        return ExecEnd(3)

    async def close(self) -> None:
        self.closed = True


class Runtime:
    def __init__(self, running: bool = True) -> None:
        self.running = running
        self.sessions: list[Session] = []

    async def open_exec(self, docker_id: str, command: Sequence[str], *, tty: bool, stdin: bool,
                        rows: int, cols: int) -> Session:
        if not self.running:
            raise ExecNotRunning("container abc is not running")
        s = Session()
        self.sessions.append(s)
        return s


class Server:
    """Plays the replica: sends requests when told, collects chunks by request id."""

    def __init__(self) -> None:
        self.requests: asyncio.Queue[agent_pb2.LogRequest | None] = asyncio.Queue()
        self.chunks: list[agent_pb2.LogChunk] = []
        self.changed = asyncio.Event()

    def open(self, out: AsyncIterator[agent_pb2.LogChunk]) -> AsyncIterator[agent_pb2.LogRequest]:
        self._reader = asyncio.create_task(self._read(out))
        return self._send()

    async def _read(self, out: AsyncIterator[agent_pb2.LogChunk]) -> None:
        async for chunk in out:
            self.chunks.append(chunk)
            self.changed.set()

    async def _send(self) -> AsyncIterator[agent_pb2.LogRequest]:
        while (r := await self.requests.get()) is not None:
            yield r

    async def ended(self, rid: str) -> list[agent_pb2.LogChunk]:
        while not any(c.request_id == rid and c.eof for c in self.chunks):
            self.changed.clear()
            await self.changed.wait()
        return [c for c in self.chunks if c.request_id == rid]

    async def stop(self, relay: asyncio.Task[None]) -> None:
        self.requests.put_nowait(None)
        await relay
        self._reader.cancel()


def start(rid: str, container: str = "abc") -> agent_pb2.LogRequest:
    return agent_pb2.LogRequest(request_id=rid, exec=agent_pb2.AgentExecStart(
        container_id=container, command=["cat"], stdin=True, tty=False))


def inp(rid: str, **kw: Any) -> agent_pb2.LogRequest:
    return agent_pb2.LogRequest(request_id=rid, exec_input=agent_pb2.AgentExecInput(**kw))


def resolve(container_id: str) -> str | None:
    return {"abc": "docker-abc"}.get(container_id)


async def test_input_in_order_output_and_exit_code() -> None:
    rt, server = Runtime(), Server()
    relay = asyncio.create_task(LogsRelay(rt, resolve, ExecServer(rt, resolve)).run(server.open))  # type: ignore[arg-type]
    for r in (start("r1"), inp("r1", stdin=b"a"), inp("r1", rows=40, cols=132), inp("r1", stdin=b"b"),
              inp("r1", close_stdin=True)):
        server.requests.put_nowait(r)
    chunks = await server.ended("r1")
    await server.stop(relay)
    assert server.chunks[0] == agent_pb2.LogChunk(serves_exec=True)  # the hello says so
    assert [(c.data, c.stderr) for c in chunks if c.data] == [(b"ab", False), (b"done\n", True)]
    assert (chunks[-1].eof, chunks[-1].exited, chunks[-1].exit_code, chunks[-1].error) == (True, True, 3, "")
    assert rt.sessions[0].ops == [("write", b"a"), ("resize", 40, 132), ("write", b"b"), "close_stdin"]
    assert rt.sessions[0].closed


async def test_the_node_limit_and_named_failures() -> None:
    rt, server = Runtime(), Server()
    execs = ExecServer(rt, resolve, ExecSlots(limit=1))  # type: ignore[arg-type]
    relay = asyncio.create_task(LogsRelay(rt, resolve, execs).run(server.open))  # type: ignore[arg-type]
    server.requests.put_nowait(start("r1"))  # holds the one slot: it waits for its stdin's end
    server.requests.put_nowait(start("r2"))
    server.requests.put_nowait(start("r3", container="gone"))
    busy, gone = (await server.ended("r2"))[-1], (await server.ended("r3"))[-1]
    assert busy.exec_failure == agent_pb2.EXEC_FAILURE_BUSY and "runs 1 exec sessions already" in busy.error
    assert gone.exec_failure == agent_pb2.EXEC_FAILURE_NO_CONTAINER and "'gone' has no container" in gone.error
    # Cancelling r1 (the client went away) ends its session, and frees the slot.
    server.requests.put_nowait(agent_pb2.LogRequest(request_id="r1", cancel=True))
    await server.ended("r1")
    assert rt.sessions[0].closed and execs.slots.used == 0
    rt.running = False
    server.requests.put_nowait(start("r4"))
    stopped = (await server.ended("r4"))[-1]
    assert stopped.exec_failure == agent_pb2.EXEC_FAILURE_NOT_RUNNING
    assert stopped.error == "the container is not running: container abc is not running"
    await server.stop(relay)


async def test_an_agent_without_exec_says_so() -> None:
    rt, server = Runtime(), Server()
    relay = asyncio.create_task(LogsRelay(rt, resolve).run(server.open))  # type: ignore[arg-type]
    server.requests.put_nowait(start("r1"))
    last = (await server.ended("r1"))[-1]
    await server.stop(relay)
    assert server.chunks[0] == agent_pb2.LogChunk(serves_exec=False)
    assert last.error == "this agent runs no exec sessions" and not rt.sessions


async def test_an_agent_without_exec_refuses_even_when_its_outgoing_queue_is_full() -> None:
    """The refusal waits for room like any answer: a full queue must not raise out of the
    request loop (QueueFull there ended the relay, and every logs and exec request with it)."""
    relay = LogsRelay(Runtime(), resolve)  # type: ignore[arg-type]
    while not relay._out.full():
        relay._out.put_nowait(agent_pb2.LogChunk(request_id="busy", data=b"x"))
    relay._handle(start("r1"))  # raised QueueFull before
    relay._out.get_nowait()  # the server reads one: room for the refusal
    await relay._tasks["r1"]
    *_, last = [relay._out.get_nowait() for _ in range(relay._out.qsize())]
    assert last is not None and last.request_id == "r1" and last.error == "this agent runs no exec sessions"
    await relay.close()
