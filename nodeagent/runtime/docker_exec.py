"""An interactive exec session against the Docker Engine (`ccs exec`), through the docker SDK.

The low-level API is used (`exec_create`, `exec_start(socket=True)`, `exec_resize`,
`exec_inspect`): the high-level `Container.exec_run` cannot keep stdin open next to a live
output stream. `exec_start(socket=True)` hands back the hijacked HTTP connection; the agent
writes stdin to it, half-closes it for EOF (the engine passes that on as the command's EOF),
and reads output from it in a dedicated thread (`ThreadStream`, as followed logs are read), so
no blocking call runs on the agent's loop. Short calls go through the runtime's thread pool.

The engine has no "kill exec" call. A session closed before its command ended (the client went
away, the relay dropped, the agent stops) kills the command's process by its host pid, which
`exec_inspect` gives: the agent runs in the host's PID namespace, as it is installed. Otherwise
a `sleep 1d` started by a client that vanished would outlive it (what `docker exec` leaves).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import socket
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from .exec_frames import STDOUT, FrameDecoder, exit_meaning, terminal_size
from .streams import ThreadStream
from .types import ContainerNotFound, ExecEnd, ExecNotRunning, RuntimeFailure

Call = Callable[..., Awaitable[Any]]  # DockerRuntime._call: (doing, fn, *args) in the pool

#: Output bytes kept to explain an exit (the engine's "OCI runtime exec failed" line).
TAIL = 1024
READ_SIZE = 64 * 1024


class DockerExecSession:
    """One exec: `output()` yields (stream, bytes) until the command ends, then `wait()`."""

    def __init__(self, api: Any, call: Call, exec_id: str, sock: Any, tty: bool) -> None:
        self._api, self._call, self.exec_id, self._sock_io, self.tty = api, call, exec_id, sock, tty
        raw = getattr(sock, "_sock", sock)  # docker-py's SocketIO wraps the socket
        self._raw: socket.socket = raw
        self._tail = b""
        self._writer = ThreadPoolExecutor(1, thread_name_prefix=f"ccs-exec-stdin-{exec_id[:12]}")
        self._ended = False
        self._stream: ThreadStream[list[tuple[int, bytes]]] = ThreadStream(
            self._open_reader, lambda pieces: pieces or None, name=f"ccs-docker-exec-{exec_id[:12]}",
        )

    @classmethod
    async def start(
        cls, api: Any, call: Call, docker_id: str, command: Sequence[str], *,
        tty: bool, stdin: bool, rows: int = 0, cols: int = 0,
    ) -> DockerExecSession:
        doing = f"exec in {docker_id[:12]}"
        try:
            created = await call(doing, api.exec_create, docker_id, list(command),
                                 stdout=True, stderr=True, stdin=stdin, tty=tty)
        except ContainerNotFound:
            raise
        except RuntimeFailure as exc:
            if "is not running" in exc.reason or "is paused" in exc.reason:
                raise ExecNotRunning(exc.reason) from exc
            raise
        exec_id = str(created["Id"])
        sock = await call(doing, api.exec_start, exec_id, tty=tty, socket=True)
        session = cls(api, call, exec_id, sock, tty)
        if not stdin:
            await session.close_stdin()
        if tty and (size := terminal_size(rows, cols)) is not None:
            await session.initial_size(*size)
        return session

    # ------------------------------------------------------------------ reading

    def _open_reader(self) -> tuple[Iterator[list[tuple[int, bytes]]], Callable[[], None]]:
        return self._read_pieces(), self._shutdown

    def _read_pieces(self) -> Iterator[list[tuple[int, bytes]]]:
        decoder = None if self.tty else FrameDecoder()
        while True:
            try:
                data = self._raw.recv(READ_SIZE)
            except OSError:
                return  # closed under us (the session was closed)
            if not data:
                return
            yield [(STDOUT, data)] if decoder is None else decoder.feed(data)

    async def output(self) -> AsyncIterator[tuple[int, bytes]]:
        async for pieces in self._stream:
            for fd, data in pieces:
                self._tail = (self._tail + data)[-TAIL:]
                yield fd, data

    # ------------------------------------------------------------------ input

    async def write(self, data: bytes) -> None:
        # sendall blocks while the command does not read its stdin: in the session's own
        # thread (never the loop, nor the runtime's pool, whose workers it would pin).
        loop = asyncio.get_running_loop()
        try:
            await loop.run_in_executor(self._writer, self._raw.sendall, data)
        except OSError as exc:
            raise RuntimeFailure(f"exec stdin: {exc}") from exc

    async def close_stdin(self) -> None:
        with contextlib.suppress(OSError):
            self._raw.shutdown(socket.SHUT_WR)

    async def resize(self, rows: int, cols: int) -> None:
        if self.tty:
            await self._call("exec resize", self._api.exec_resize, self.exec_id, height=rows, width=cols)

    async def initial_size(self, rows: int, cols: int) -> None:
        """The first size: the engine may not have started the exec yet when `exec_start` with a
        socket returns ("no such exec"), so retry a few times, as the docker CLI does; a
        session whose size never lands keeps the engine's default rather than failing."""
        for attempt in range(10):
            try:
                await self.resize(rows, cols)
                return
            except RuntimeFailure:
                await asyncio.sleep(0.01 * (attempt + 1))

    # ------------------------------------------------------------------ end

    async def wait(self) -> ExecEnd:
        """The exit once output has ended; the engine may need a moment to record it."""
        details: dict[str, Any] = {}
        for _ in range(50):
            details = await self._call("inspect exec", self._api.exec_inspect, self.exec_id)
            if not details.get("Running") and details.get("ExitCode") is not None:
                break
            await asyncio.sleep(0.05)
        self._ended = True
        code, message = exit_meaning(int(details.get("ExitCode") or 0), self._tail)
        return ExecEnd(code, message)

    async def close(self) -> None:
        """End the session: kill its command if it still runs, close the connection and thread."""
        if not self._ended:
            with contextlib.suppress(Exception):
                details = await self._call("inspect exec", self._api.exec_inspect, self.exec_id)
                pid = int(details.get("Pid") or 0)
                if details.get("Running") and pid > 1:
                    with contextlib.suppress(ProcessLookupError, PermissionError):
                        os.kill(pid, signal.SIGKILL)
            self._ended = True
        await self._stream.aclose()
        self._shutdown()  # unblocks a write waiting in the writer thread
        self._writer.shutdown(wait=False, cancel_futures=True)

    def _shutdown(self) -> None:
        with contextlib.suppress(OSError):
            self._raw.shutdown(socket.SHUT_RDWR)
        with contextlib.suppress(OSError):
            self._raw.close()
        with contextlib.suppress(Exception):
            self._sock_io.close()
