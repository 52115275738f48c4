"""The reverse logs channel: the server asks for a container's logs, the agent streams them up.

The agent opens `Logs(stream LogChunk) returns (stream LogRequest)` because it can reach the
server and not the other way round. The first chunk is an empty hello. Each LogRequest is
served by its own task streaming `runtime.logs(...)` as chunks tagged with the request_id, then
one chunk with eof (and `error` when it failed); a request with `cancel` stops its task.

The transport is a seam: `run(open_stream)` takes a function from the outgoing chunk iterator
to the incoming request iterator, which is `lambda out: stub.Logs(out, metadata=...)` in the
agent and a plain async generator in unit tests. All chunks go through one bounded queue, so a
slow server back-pressures the log readers instead of growing memory.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
from collections.abc import AsyncIterator, Callable

import structlog

from ccs.v1 import agent_pb2
from nodeagent.runtime.types import Runtime, RuntimeFailure

MAX_CHUNK = 64 * 1024
QUEUE_SIZE = 256

OpenStream = Callable[[AsyncIterator[agent_pb2.LogChunk]], AsyncIterator[agent_pb2.LogRequest]]
Resolve = Callable[[str], str | None]  # ccs container id -> docker id on this node

log = structlog.get_logger("ccs.agent.logs")


class LogsRelay:
    def __init__(self, runtime: Runtime, resolve: Resolve) -> None:
        self._runtime = runtime
        self._resolve = resolve
        self._out: asyncio.Queue[agent_pb2.LogChunk] = asyncio.Queue(QUEUE_SIZE)
        self._tasks: dict[str, asyncio.Task[None]] = {}

    async def run(self, open_stream: OpenStream) -> None:
        """Serve requests until the stream ends (returns) or fails (raises); cancels its tasks."""
        await self._out.put(agent_pb2.LogChunk())  # hello: lets the server bind the stream to us
        try:
            async for request in open_stream(self._outgoing()):
                self._handle(request)
        finally:
            await self.close()

    async def close(self) -> None:
        tasks = list(self._tasks.values())
        self._tasks.clear()
        for t in tasks:
            t.cancel()
        for t in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await t

    async def _outgoing(self) -> AsyncIterator[agent_pb2.LogChunk]:
        while True:
            yield await self._out.get()

    def _handle(self, request: agent_pb2.LogRequest) -> None:
        rid = request.request_id
        if request.cancel:
            task = self._tasks.pop(rid, None)
            if task is not None:
                task.cancel()
            return
        if not rid or rid in self._tasks:
            log.warning("ignoring log request", request_id=rid, reason="empty or duplicate request_id")
            return
        task = asyncio.create_task(self._serve(request), name=f"logs-{rid}")
        self._tasks[rid] = task
        task.add_done_callback(functools.partial(self._done, rid))

    def _done(self, rid: str, task: asyncio.Task[None]) -> None:
        if self._tasks.get(rid) is task:
            del self._tasks[rid]

    async def _serve(self, request: agent_pb2.LogRequest) -> None:
        rid = request.request_id
        docker_id = self._resolve(request.container_id)
        if docker_id is None:
            await self._out.put(
                agent_pb2.LogChunk(
                    request_id=rid, eof=True,
                    error=f"container_id: {request.container_id!r} has no container on this node",
                )
            )
            return
        error = ""
        try:
            stream = self._runtime.logs(
                docker_id,
                follow=request.follow,
                tail=None if request.tail < 0 else request.tail,
                since=request.since or None,
            )
            async for data in stream:
                for i in range(0, len(data), MAX_CHUNK):
                    await self._out.put(agent_pb2.LogChunk(request_id=rid, data=data[i : i + MAX_CHUNK]))
        except asyncio.CancelledError:
            with contextlib.suppress(asyncio.QueueFull):  # best effort: we must not block a cancel
                self._out.put_nowait(agent_pb2.LogChunk(request_id=rid, eof=True, error="canceled"))
            raise
        except RuntimeFailure as exc:
            error = exc.reason
        except Exception as exc:  # a broken log stream must not take the relay down
            log.exception("log stream failed", request_id=rid)
            error = f"log stream failed: {exc}"
        await self._out.put(agent_pb2.LogChunk(request_id=rid, eof=True, error=error))
