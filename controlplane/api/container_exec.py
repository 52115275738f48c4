"""ContainerService/Exec: run a command in a running container, relayed to its node's agent.

The call is a bidirectional stream: the first request names the container and the command
(the access gate reads it for the role check and the audit record, which names the command,
never the input or output); later requests carry stdin, its end and terminal resizes. The
container is read from etcd (its node and state), the session goes to the node's agent over
the logs channel (:mod:`controlplane.dispatcher.exec_relay`), and the answers stream back:
stdout and stderr, then one response with the exit code. The client leaving cancels this
handler, which ends the session on the agent and kills its command.

Errors are named: an unknown container is NOT_FOUND; a container not running, a node whose
agent is not connected to this replica (or too old for exec) and a container gone from its
node, or a node at its limit of concurrent execs, are FAILED_PRECONDITION (the SDK's
RESOURCE_EXHAUSTED means a message too large).
A command that does not exist is not an error of the call: it ends with exit code 127 (126
when it cannot run), as with docker.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

import grpc

from ccs.v1 import agent_pb2, api_pb2
from ccs.v1 import resources_pb2 as pb
from controlplane.api.object_names import check_container_name, check_service_name
from controlplane.dispatcher.exec_relay import AgentTooOld, ExecFailed, ExecLine
from controlplane.dispatcher.logs_relay import AgentNotConnected, ClientTooSlow, LogBroker
from controlplane.grpc_errors import FailedPrecondition, InvalidArgument
from controlplane.names import check_name
from controlplane.store import keys, reads
from controlplane.store.etcd import Etcd

#: The command's words, and their bytes in all (a command line, not a file upload).
MAX_ARGS = 1024
MAX_COMMAND_BYTES = 64 * 1024
#: The most stdin one request may carry (larger pieces are refused, naming the field).
MAX_STDIN_CHUNK = 64 * 1024
#: States in which a container's process may be running; the agent has the final word.
EXEC_STATES = frozenset({pb.CONTAINER_STATE_STARTING, pb.CONTAINER_STATE_RUNNING,
                         pb.CONTAINER_STATE_HEALTHY, pb.CONTAINER_STATE_UNHEALTHY})


def check_size(field: str, rows: int, cols: int) -> None:
    if bool(rows) != bool(cols):
        raise InvalidArgument(field, f"give rows and cols together (got rows={rows}, cols={cols})")
    if rows > 65535 or cols > 65535:
        raise InvalidArgument(field, f"{rows}x{cols} is larger than a terminal can be (65535)")


def check_start(request: api_pb2.ExecRequest) -> None:
    """The first request: names, the command, the terminal size; refused naming the field."""
    check_name("cluster", request.cluster)
    check_name("application", request.application)
    check_service_name("service", request.service)
    check_container_name("container", request.container)
    if not request.command or not request.command[0]:
        raise InvalidArgument("command", "must name a program to run (ccs exec CONTAINER -- CMD...)")
    if len(request.command) > MAX_ARGS:
        raise InvalidArgument("command", f"{len(request.command)} words; at most {MAX_ARGS}")
    if sum(len(a.encode()) for a in request.command) > MAX_COMMAND_BYTES:
        raise InvalidArgument("command", f"longer than {MAX_COMMAND_BYTES} bytes")
    for i, word in enumerate(request.command):
        if "\0" in word:
            raise InvalidArgument(f"command[{i}]", "holds a NUL byte")
    check_size("rows", request.rows, request.cols)
    if not request.tty and request.rows:
        raise InvalidArgument("rows", "a terminal size needs tty")
    if (request.stdin_data or request.close_stdin) and not request.stdin:
        raise InvalidArgument("stdin_data", "the exec is started without stdin (set stdin)")
    if len(request.stdin_data) > MAX_STDIN_CHUNK:
        raise InvalidArgument("stdin_data",
                              f"{len(request.stdin_data)} bytes in one request; at most {MAX_STDIN_CHUNK}")


def check_input(request: api_pb2.ExecRequest, index: int, first: api_pb2.ExecRequest) -> agent_pb2.AgentExecInput:
    """A later request: only input fields; the container and command are the first's. Input the
    session was not opened for (stdin without ``stdin``, a size without ``tty``) is refused, not
    dropped."""
    for name in ("cluster", "application", "service", "container"):
        if getattr(request, name):
            raise InvalidArgument(name, f"request {index}: only the first request names the container")
    if request.command or request.tty or request.stdin:
        raise InvalidArgument("command", f"request {index}: only the first request sets the command")
    if len(request.stdin_data) > MAX_STDIN_CHUNK:
        raise InvalidArgument("stdin_data", f"{len(request.stdin_data)} bytes in one request; at most "
                                            f"{MAX_STDIN_CHUNK}")
    check_size("rows", request.rows, request.cols)
    if (request.stdin_data or request.close_stdin) and not first.stdin:
        raise InvalidArgument("stdin_data", f"request {index}: the exec was started without stdin")
    if request.rows and not first.tty:
        raise InvalidArgument("rows", f"request {index}: a terminal size needs tty")
    return agent_pb2.AgentExecInput(stdin=request.stdin_data, close_stdin=request.close_stdin,
                                    rows=request.rows, cols=request.cols)


async def exec_stream(
    etcd: Etcd, broker: LogBroker, requests: AsyncIterator[api_pb2.ExecRequest], context: grpc.aio.ServicerContext
) -> AsyncIterator[api_pb2.ExecResponse]:
    it = aiter(requests)
    first = await anext(it, None)
    if first is None:
        raise InvalidArgument("cluster", "the first request must name the container and the command")
    check_start(first)
    c = await reads.get(etcd, keys.container(first.cluster, first.application, first.service, first.container),
                        pb.Container, "container", first.container)
    state = pb.ContainerState.Name(c.status.state).removeprefix("CONTAINER_STATE_")
    if c.status.state not in EXEC_STATES or not c.node or not c.status.docker_id:
        raise FailedPrecondition(f"container {first.container!r} is not running (state {state})")
    start = agent_pb2.AgentExecStart(container_id=c.meta.id, command=first.command, tty=first.tty,
                                     stdin=first.stdin, rows=first.rows, cols=first.cols)
    try:
        line = ExecLine(broker, first.cluster, c.node, start)
    except (AgentNotConnected, AgentTooOld) as exc:
        raise FailedPrecondition(str(exc)) from exc
    if first.stdin_data or first.close_stdin:
        await line.send(agent_pb2.AgentExecInput(stdin=first.stdin_data, close_stdin=first.close_stdin))

    async def forward() -> None:
        index = 1
        async for request in it:
            await line.send(check_input(request, index, first))
            index += 1

    forwarder = asyncio.create_task(forward(), name=f"exec-in-{line.rid}")
    try:
        async for chunk in _until_failed(line.chunks(), forwarder):
            if chunk.data:
                yield (api_pb2.ExecResponse(stderr=chunk.data) if chunk.stderr
                       else api_pb2.ExecResponse(stdout=chunk.data))
            if chunk.exited:
                yield api_pb2.ExecResponse(exited=True, exit_code=chunk.exit_code, message=chunk.error)
                return
    except ExecFailed as exc:  # the node's limit of execs included: try again later
        raise FailedPrecondition(f"container {first.container!r} on node {c.node!r}: {exc.message}") from exc
    except (AgentNotConnected, ClientTooSlow) as exc:
        raise FailedPrecondition(str(exc)) from exc
    finally:
        line.close()
        forwarder.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await forwarder


async def _until_failed(
    chunks: AsyncIterator[agent_pb2.LogChunk], forwarder: asyncio.Task[None]
) -> AsyncIterator[agent_pb2.LogChunk]:
    """The chunks; a bad later request (the forwarder failed) ends the call with its error."""
    it = aiter(chunks)
    while True:
        nxt = asyncio.ensure_future(anext(it))
        await asyncio.wait({nxt, forwarder}, return_when=asyncio.FIRST_COMPLETED)
        if forwarder.done() and forwarder.exception() is not None and not nxt.done():
            nxt.cancel()
            with contextlib.suppress(asyncio.CancelledError, StopAsyncIteration):
                await nxt
            raise forwarder.exception()  # type: ignore[misc]
        try:
            chunk = await nxt
        except StopAsyncIteration:
            return
        yield chunk
