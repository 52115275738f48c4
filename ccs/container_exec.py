"""``containers.exec``: run a command in a running container, streaming its input and output.

The call is one bidirectional gRPC stream (``ContainerService/Exec``). :class:`ExecSession`
is its client side: iterate it for output pieces (``stdout`` / ``stderr`` bytes; with a TTY
everything is ``stdout``), ``write`` stdin, ``close_stdin``, ``resize`` the terminal; when the
iteration ends, ``exit_code`` holds the command's exit status (127: not found, 126: could not
run, with ``message`` saying why). Leaving the session early (``aclose`` or the ``async with``)
cancels the call, and the server ends the command. :func:`exec_run` is the one-shot form:
output collected, exit code returned.

gRPC errors become ``ccs.errors`` exceptions at this one boundary, as ``Transport`` does for
the other calls: ``NotFound`` (no such container), ``FailedPrecondition`` (not running, node
not connected, the node's exec limit), ``PermissionDenied`` (the token's role).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from types import TracebackType
from typing import Any

import grpc

from ccs.cancellation import raise_if_cancelled
from ccs.errors import from_rpc_error
from ccs.v1 import api_pb2

#: Stdin is sent in pieces of at most this (the server's limit per request).
STDIN_CHUNK = 64 * 1024


@dataclass(frozen=True)
class ExecResult:
    exit_code: int
    stdout: bytes
    stderr: bytes
    message: str = ""  # why the command did not run (exit code 126 or 127)


class ExecSession:
    def __init__(self, call: Any) -> None:
        self._call = call
        self.exit_code: int | None = None
        self.message = ""

    async def _write(self, request: api_pb2.ExecRequest) -> None:
        try:
            await self._call.write(request)
        except grpc.RpcError as exc:
            raise from_rpc_error(exc) from None

    async def write(self, data: bytes) -> None:
        """Send ``data`` to the command's stdin (the session must be opened with ``stdin=True``)."""
        for i in range(0, len(data), STDIN_CHUNK):
            await self._write(api_pb2.ExecRequest(stdin_data=data[i : i + STDIN_CHUNK]))

    async def close_stdin(self) -> None:
        """The command reads EOF; no more input is sent."""
        await self._write(api_pb2.ExecRequest(close_stdin=True))
        await self._call.done_writing()

    async def resize(self, rows: int, cols: int) -> None:
        """The terminal's new size (a TTY session)."""
        await self._write(api_pb2.ExecRequest(rows=rows, cols=cols))

    def __aiter__(self) -> AsyncIterator[api_pb2.ExecResponse]:
        return self._output()

    async def _output(self) -> AsyncIterator[api_pb2.ExecResponse]:
        try:
            while True:
                response = await self._call.read()
                if response is grpc.aio.EOF:
                    break
                if response.exited:
                    self.exit_code, self.message = response.exit_code, response.message
                    break
                yield response
        except grpc.RpcError as exc:
            raise_if_cancelled()
            raise from_rpc_error(exc) from None

    async def wait(self) -> int:
        """Drop the remaining output and return the exit code."""
        async for _ in self:
            pass
        if self.exit_code is None:
            raise from_rpc_error(_Ended()) from None
        return self.exit_code

    async def aclose(self) -> None:
        self._call.cancel()

    async def __aenter__(self) -> ExecSession:
        return self

    async def __aexit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                        tb: TracebackType | None) -> None:
        await self.aclose()


class _Ended(grpc.RpcError):
    """The stream ended without an exit code (a server that broke off)."""

    def code(self) -> grpc.StatusCode:
        return grpc.StatusCode.UNAVAILABLE

    def details(self) -> str:
        return "the exec stream ended without the command's exit code"


async def open_session(
    stub_method: Any, metadata: Any, cluster: str, application: str, service: str, container: str,
    command: Sequence[str], *, tty: bool, stdin: bool, rows: int, cols: int,
) -> ExecSession:
    call = stub_method(metadata=metadata)
    session = ExecSession(call)
    await session._write(api_pb2.ExecRequest(
        cluster=cluster, application=application, service=service, container=container,
        command=list(command), tty=tty, stdin=stdin, rows=rows, cols=cols))
    return session


async def collect(session: ExecSession, data: bytes | None) -> ExecResult:
    async with session:
        if data is not None:
            await session.write(data)
            await session.close_stdin()
        out, err = bytearray(), bytearray()
        async for piece in session:
            out += piece.stdout
            err += piece.stderr
        code = await session.wait()
        return ExecResult(code, bytes(out), bytes(err), session.message)
