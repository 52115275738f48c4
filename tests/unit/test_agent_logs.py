"""The logs relay against FakeRuntime, with an in-memory transport (nodeagent.logs_relay)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

from ccs.v1 import agent_pb2
from nodeagent.logs_relay import LogsRelay
from nodeagent.runtime import FakeRuntime

from .test_agent_helpers import container


class Transport:
    """Plays the server: sends the given requests, collects chunks until every request has eof."""

    def __init__(self, requests: list[agent_pb2.LogRequest], expect_eof: int) -> None:
        self.requests = requests
        self.expect_eof = expect_eof
        self.chunks: list[agent_pb2.LogChunk] = []
        self.done = asyncio.Event()

    def open(self, out: AsyncIterator[agent_pb2.LogChunk]) -> AsyncIterator[agent_pb2.LogRequest]:
        self._reader = asyncio.create_task(self._read(out))
        return self._requests()

    async def _read(self, out: AsyncIterator[agent_pb2.LogChunk]) -> None:
        async for chunk in out:
            self.chunks.append(chunk)
            if sum(c.eof for c in self.chunks) >= self.expect_eof:
                self.done.set()

    async def _requests(self) -> AsyncIterator[agent_pb2.LogRequest]:
        for r in self.requests:
            yield r
        await self.done.wait()
        self._reader.cancel()


async def test_relay_serves_requests_and_reports_unknown_containers() -> None:
    rt = FakeRuntime()
    c = container("abc")
    await rt.prepare(c)
    docker_id = await rt.create(c)
    await rt.start(docker_id)
    transport = Transport(
        [
            agent_pb2.LogRequest(request_id="r1", container_id="abc", tail=-1),
            agent_pb2.LogRequest(request_id="r2", container_id="nope", tail=-1),
        ],
        expect_eof=2,
    )
    relay = LogsRelay(rt, {"abc": docker_id}.get)
    await relay.run(transport.open)

    assert transport.chunks[0] == agent_pb2.LogChunk()  # the hello
    r1 = [ch for ch in transport.chunks if ch.request_id == "r1"]
    assert b"".join(ch.data for ch in r1).endswith(b"hollow container started\n")
    assert r1[-1].eof and not r1[-1].error
    (r2,) = [ch for ch in transport.chunks if ch.request_id == "r2"]
    assert r2.eof and "container_id" in r2.error and "nope" in r2.error


async def test_relay_honours_cancel() -> None:
    started = asyncio.Event()

    class FollowingRuntime(FakeRuntime):
        async def logs(
            self, docker_id: str, *, follow: bool, tail: int | None, since: float | None
        ) -> AsyncIterator[bytes]:
            yield b"first line\n"
            started.set()
            await asyncio.Event().wait()  # follow forever
            yield b""

    rt = FollowingRuntime()
    chunks: list[agent_pb2.LogChunk] = []
    finished = asyncio.Event()

    async def requests() -> AsyncIterator[agent_pb2.LogRequest]:
        yield agent_pb2.LogRequest(request_id="f", container_id="abc", follow=True, tail=-1)
        await started.wait()
        yield agent_pb2.LogRequest(request_id="f", cancel=True)
        await finished.wait()

    def open_stream(out: AsyncIterator[agent_pb2.LogChunk]) -> AsyncIterator[agent_pb2.LogRequest]:
        async def read() -> None:
            async for ch in out:
                chunks.append(ch)
                if ch.eof:
                    finished.set()
        readers.append(asyncio.create_task(read()))
        return requests()

    readers: list[asyncio.Task[None]] = []
    await LogsRelay(rt, {"abc": "d1"}.get).run(open_stream)
    readers[0].cancel()
    eof = [ch for ch in chunks if ch.eof]
    assert [(ch.request_id, ch.error) for ch in eof] == [("f", "canceled")]
    assert any(ch.data == b"first line\n" for ch in chunks)
