"""`ccs exec` on the agent: sessions started by requests on the logs relay channel.

An exec rides the channel the agent already keeps open to every API replica for logs
(`nodeagent.logs_fanout`), so whichever replica a client reaches can run it, with no new
listener on the node and no replica-to-replica link: a `LogRequest` with `exec` starts a
session under its request id, later requests with `exec_input` carry stdin, its end and
terminal resizes, and `cancel` (the client went away) or the relay closing (the replica went
away) ends it. Output goes up as `LogChunk`s with that id (`stderr` marks stderr), then one
chunk with `eof`, `exited` and the exit code; a session that cannot start ends with `error`
and an `exec_failure` code instead.

Bounds: at most `MAX_EXECS` sessions at once on a node, over all relays (one more is refused
with EXEC_FAILURE_BUSY rather than queued: an interactive user should hear at once), and at
most `MAX_INPUT_BACKLOG` input messages waiting for one session (a command that does not read
its stdin ends its session instead of growing the agent's memory). Every session's command is
killed and its connection closed when the session ends for any reason (`DockerExecSession`).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable

import structlog

from ccs.v1 import agent_pb2
from nodeagent.runtime.exec_frames import STDERR
from nodeagent.runtime.types import ContainerNotFound, ExecNotRunning, ExecSession, Runtime, RuntimeFailure

#: Concurrent exec sessions on one node.
MAX_EXECS = 8
#: Input messages (up to 64 KiB of stdin each) waiting for one session.
MAX_INPUT_BACKLOG = 64
MAX_CHUNK = 64 * 1024

Send = Callable[[agent_pb2.LogChunk], Awaitable[None]]
Resolve = Callable[[str], str | None]

log = structlog.get_logger("ccs.agent.exec")


class ExecSlots:
    """The node's count of running sessions, shared by every relay of the agent."""

    def __init__(self, limit: int = MAX_EXECS) -> None:
        self.limit, self.used = limit, 0

    def take(self) -> bool:
        if self.used >= self.limit:
            return False
        self.used += 1
        return True

    def give(self) -> None:
        self.used -= 1


def failed(rid: str, failure: agent_pb2.ExecFailure, message: str) -> agent_pb2.LogChunk:
    return agent_pb2.LogChunk(request_id=rid, eof=True, error=message, exec_failure=failure)


class ExecServer:
    def __init__(self, runtime: Runtime, resolve: Resolve, slots: ExecSlots | None = None) -> None:
        self.runtime, self.resolve = runtime, resolve
        self.slots = slots or ExecSlots()

    async def serve(
        self, request: agent_pb2.LogRequest, inputs: asyncio.Queue[agent_pb2.AgentExecInput], send: Send
    ) -> None:
        rid, start = request.request_id, request.exec
        docker_id = self.resolve(start.container_id)
        if docker_id is None:
            await send(failed(rid, agent_pb2.EXEC_FAILURE_NO_CONTAINER,
                              f"container_id: {start.container_id!r} has no container on this node"))
            return
        if not start.command:
            await send(failed(rid, agent_pb2.EXEC_FAILURE_ENGINE, "command: must name a program to run"))
            return
        if not self.slots.take():
            await send(failed(rid, agent_pb2.EXEC_FAILURE_BUSY,
                              f"this node runs {self.slots.limit} exec sessions already (its limit); "
                              "try again when one ends"))
            return
        try:
            try:
                session = await self.runtime.open_exec(
                    docker_id, list(start.command), tty=start.tty, stdin=start.stdin,
                    rows=start.rows, cols=start.cols)
            except ExecNotRunning as exc:
                await send(failed(rid, agent_pb2.EXEC_FAILURE_NOT_RUNNING,
                                  f"the container is not running: {exc.reason}"))
                return
            except ContainerNotFound as exc:
                await send(failed(rid, agent_pb2.EXEC_FAILURE_NO_CONTAINER, exc.reason))
                return
            except RuntimeFailure as exc:
                await send(failed(rid, agent_pb2.EXEC_FAILURE_ENGINE, exc.reason))
                return
            log.info("exec started", request_id=rid, container=docker_id[:12], tty=start.tty)
            try:
                await self._run(rid, session, inputs, send)
            finally:
                await session.close()
                log.info("exec ended", request_id=rid, container=docker_id[:12])
        finally:
            self.slots.give()

    async def _run(self, rid: str, session: ExecSession, inputs: asyncio.Queue[agent_pb2.AgentExecInput],
                   send: Send) -> None:
        feeder = asyncio.create_task(_feed(session, inputs), name=f"exec-stdin-{rid}")
        try:
            async for fd, data in session.output():
                for i in range(0, len(data), MAX_CHUNK):
                    await send(agent_pb2.LogChunk(request_id=rid, data=data[i : i + MAX_CHUNK],
                                                  stderr=fd == STDERR))
            end = await session.wait()
        except RuntimeFailure as exc:
            await send(failed(rid, agent_pb2.EXEC_FAILURE_ENGINE, exc.reason))
            return
        finally:
            feeder.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await feeder
        await send(agent_pb2.LogChunk(request_id=rid, eof=True, exited=True, exit_code=end.exit_code,
                                      error=end.message))


async def _feed(session: ExecSession, inputs: asyncio.Queue[agent_pb2.AgentExecInput]) -> None:
    """Apply input in order (a resize before the stdin that came after it); a write the command
    no longer takes (it exited) ends the feeding."""
    while True:
        item = await inputs.get()
        if item.rows and item.cols:
            with contextlib.suppress(RuntimeFailure):  # a lost resize must not end the session
                await session.resize(item.rows, item.cols)
        try:
            if item.stdin:
                await session.write(item.stdin)
            if item.close_stdin:
                await session.close_stdin()
        except (RuntimeFailure, OSError):
            return
