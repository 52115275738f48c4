"""The reverse logs channel: the server asks for a container's logs, the agent streams them up.

The agent opens `Logs(stream LogChunk) returns (stream LogRequest)` because it can reach the
server and not the other way round. The first chunk is an empty hello. Each LogRequest is
served by its own task streaming `runtime.logs(...)` as chunks tagged with the request_id, then
one chunk with eof (and `error` when it failed); a request with `cancel` stops its task.

The transport is a seam: `run(open_stream)` takes a function from the outgoing chunk iterator
to the incoming request iterator, which is `lambda out: stub.Logs(out, metadata=...)` in the
agent and a plain async generator in unit tests. All chunks go through one bounded queue, so a
slow server back-pressures the log readers instead of growing memory.

The outgoing iterator ends by itself when the relay closes (a sentinel in the queue). grpc
consumes it in its own task and does not cancel that task when the call has already failed
(a server that went away); an iterator that waited forever would keep that task pending until
the garbage collector found it and tried to `aclose()` a generator suspended in `await`
("aclose(): asynchronous generator is already running", "Task exception was never retrieved").
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
from collections.abc import AsyncIterator, Callable, Coroutine
from typing import Any

import structlog

from ccs.v1 import agent_pb2
from nodeagent.exec_sessions import MAX_INPUT_BACKLOG, ExecServer, failed
from nodeagent.runtime.types import Runtime, RuntimeFailure

MAX_CHUNK = 64 * 1024
QUEUE_SIZE = 256

OpenStream = Callable[[AsyncIterator[agent_pb2.LogChunk]], AsyncIterator[agent_pb2.LogRequest]]
Resolve = Callable[[str], str | None]  # ccs container id -> docker id on this node

log = structlog.get_logger("ccs.agent.logs")


class LogsRelay:
    def __init__(self, runtime: Runtime, resolve: Resolve, execs: ExecServer | None = None) -> None:
        self._runtime = runtime
        self._resolve = resolve
        self._execs = execs  # `ccs exec` sessions ride this channel too (nodeagent.exec_sessions)
        self._exec_inputs: dict[str, asyncio.Queue[agent_pb2.AgentExecInput]] = {}
        self._out: asyncio.Queue[agent_pb2.LogChunk | None] = asyncio.Queue(QUEUE_SIZE)  # None: end
        self._tasks: dict[str, asyncio.Task[None]] = {}
        self._closed = False

    async def run(self, open_stream: OpenStream) -> None:
        """Serve requests until the stream ends (returns) or fails (raises); cancels its tasks."""
        if self._closed:
            raise RuntimeError("a LogsRelay runs once; make a new one to reconnect")
        # hello: lets the server bind the stream to us, and says whether we serve exec
        await self._out.put(agent_pb2.LogChunk(serves_exec=self._execs is not None))
        stream = open_stream(self._outgoing())
        try:
            async for request in stream:
                self._handle(request)
        finally:
            cancel = getattr(stream, "cancel", None)  # a grpc call: never leave it open behind us
            if cancel is not None:
                cancel()
            await self.close()

    async def close(self) -> None:
        """Cancel the request tasks and end the outgoing iterator; safe to call more than once.

        Waiting for the tasks must not swallow a cancellation of the caller itself: `asyncio.wait`
        (unlike `await task` under `suppress(CancelledError)`) raises only for the caller.
        """
        tasks = list(self._tasks.values())
        self._tasks.clear()
        for t in tasks:
            t.cancel()
        if tasks:
            await asyncio.wait(tasks)
        self._end_outgoing()

    def _end_outgoing(self) -> None:
        """Make `_outgoing` return: drop unsent chunks (nobody will read them) for the sentinel."""
        self._closed = True
        while self._out.full():
            self._out.get_nowait()
        self._out.put_nowait(None)

    async def _outgoing(self) -> AsyncIterator[agent_pb2.LogChunk]:
        while not self._closed:
            chunk = await self._out.get()
            if chunk is None:
                return
            yield chunk

    def _handle(self, request: agent_pb2.LogRequest) -> None:
        rid = request.request_id
        if request.cancel:
            task = self._tasks.pop(rid, None)
            if task is not None:
                task.cancel()
            return
        if request.HasField("exec_input"):
            self._exec_input(rid, request.exec_input)
            return
        if not rid or rid in self._tasks:
            log.warning("ignoring log request", request_id=rid, reason="empty or duplicate request_id")
            return
        work: Coroutine[Any, Any, None]
        if request.HasField("exec") and self._execs is None:
            # Refused through the queue like any answer, waiting for room: it may be full now.
            work = self._out.put(failed(rid, agent_pb2.EXEC_FAILURE_ENGINE, "this agent runs no exec sessions"))
        elif request.HasField("exec"):
            inputs: asyncio.Queue[agent_pb2.AgentExecInput] = asyncio.Queue(MAX_INPUT_BACKLOG)
            self._exec_inputs[rid] = inputs
            work = self._serve_exec(request, inputs)
        else:
            work = self._serve(request)
        task = asyncio.create_task(work, name=f"{'exec' if request.HasField('exec') else 'logs'}-{rid}")
        self._tasks[rid] = task
        task.add_done_callback(functools.partial(self._done, rid))

    def _done(self, rid: str, task: asyncio.Task[None]) -> None:
        if self._tasks.get(rid) is task:
            del self._tasks[rid]
            self._exec_inputs.pop(rid, None)

    def _exec_input(self, rid: str, item: agent_pb2.AgentExecInput) -> None:
        inputs = self._exec_inputs.get(rid)
        if inputs is None:
            return  # the session ended: its command takes no more input
        try:
            inputs.put_nowait(item)
        except asyncio.QueueFull:
            task = self._tasks.pop(rid, None)
            self._exec_inputs.pop(rid, None)
            if task is not None:
                task.cancel()
            with contextlib.suppress(asyncio.QueueFull):
                self._out.put_nowait(failed(
                    rid, agent_pb2.EXEC_FAILURE_ENGINE,
                    f"stdin: more than {MAX_INPUT_BACKLOG} pieces of input waiting: the command does not read it"))

    async def _serve_exec(self, request: agent_pb2.LogRequest,
                          inputs: asyncio.Queue[agent_pb2.AgentExecInput]) -> None:
        assert self._execs is not None
        rid = request.request_id
        try:
            await self._execs.serve(request, inputs, self._out.put)
        except asyncio.CancelledError:
            with contextlib.suppress(asyncio.QueueFull):  # best effort: we must not block a cancel
                self._out.put_nowait(agent_pb2.LogChunk(request_id=rid, eof=True, error="canceled"))
            raise
        except Exception as exc:  # a broken session must not take the relay down
            log.exception("exec session failed", request_id=rid)
            await self._out.put(failed(rid, agent_pb2.EXEC_FAILURE_ENGINE, f"exec failed: {exc}"))

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
