"""``ccs exec [-i] [-t] CONTAINER -- CMD...``: a command in a running container, like ``docker exec``.

The container is found by name in the cluster (as ``ccs logs CONTAINER`` finds it). With
``-i`` the CLI's stdin is streamed to the command (its end closes the command's stdin); with
``-t`` the command gets a terminal: the local one is put in raw mode (keys, Ctrl-C included,
go to the command) and restored on exit, and every resize (SIGWINCH) is sent on. Without
``-t`` the command's stdout and stderr arrive apart and go to ours. ``ccs exec`` exits with
the command's exit code (127: not found, 126: cannot run); errors of ccs itself keep the
CLI's codes (3 no such container, 5 not running or node not connected, 6 not allowed).

Stdin is read by a daemon thread: a blocking ``read`` works the same on a terminal, a pipe and
a file (an event-loop reader refuses regular files), and the thread dies with the process.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import signal
import sys
import termios
import threading
import tty as ttymod
from collections.abc import Iterator
from typing import Annotated

import typer

from ccs.client import AsyncClient
from ccs.container_exec import ExecSession
from cli.commands.container import named
from cli.session import ClusterOpt, session

READ_SIZE = 64 * 1024


@contextlib.contextmanager
def raw_terminal(fd: int, enabled: bool) -> Iterator[None]:
    """The terminal on ``fd`` in raw mode for the block, restored after whatever happens."""
    if not enabled:
        yield
        return
    saved = termios.tcgetattr(fd)
    try:
        ttymod.setraw(fd)
        yield
    finally:
        termios.tcsetattr(fd, termios.TCSADRAIN, saved)


def terminal_size() -> tuple[int, int]:
    size = shutil.get_terminal_size(fallback=(0, 0))
    return size.lines, size.columns


def _read_stdin(loop: asyncio.AbstractEventLoop, queue: asyncio.Queue[bytes]) -> None:
    fd = sys.stdin.fileno()
    while True:
        try:
            data = os.read(fd, READ_SIZE)
        except OSError:
            data = b""
        try:
            loop.call_soon_threadsafe(queue.put_nowait, data)
        except RuntimeError:  # the loop is closed: the exec is over
            return
        if not data:
            return


async def _pump_stdin(s: ExecSession) -> None:
    queue: asyncio.Queue[bytes] = asyncio.Queue(maxsize=0)
    threading.Thread(target=_read_stdin, args=(asyncio.get_running_loop(), queue), daemon=True,
                     name="ccs-exec-stdin").start()
    while data := await queue.get():
        await s.write(data)
    await s.close_stdin()


async def run_exec(cl: AsyncClient, cluster: str, ref: str, command: list[str], *,
                   interactive: bool, tty: bool) -> tuple[int, str]:
    c = await named(cl, cluster, ref)
    rows, cols = terminal_size() if tty else (0, 0)
    s = await cl.containers.exec(cluster, c.application, c.service, ref, command, tty=tty, stdin=interactive,
                                 rows=rows, cols=cols)
    loop = asyncio.get_running_loop()
    tasks: list[asyncio.Task[None]] = []
    async with s:
        if interactive:
            tasks.append(asyncio.create_task(_pump_stdin(s)))
        if tty:
            def resized() -> None:
                r, k = terminal_size()
                if r and k:
                    tasks.append(asyncio.create_task(s.resize(r, k)))
            loop.add_signal_handler(signal.SIGWINCH, resized)
        try:
            with raw_terminal(sys.stdin.fileno(), tty and interactive and sys.stdin.isatty()):
                out, err = sys.stdout.buffer, sys.stderr.buffer
                async for piece in s:
                    if piece.stdout:
                        out.write(piece.stdout)
                        out.flush()
                    if piece.stderr:
                        err.write(piece.stderr)
                        err.flush()
                code = await s.wait()
        finally:
            if tty:
                loop.remove_signal_handler(signal.SIGWINCH)
            for t in tasks:
                t.cancel()
            for t in tasks:
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await t
    return code, s.message


def exec_command(
    ctx: typer.Context,
    container: Annotated[str, typer.Argument(metavar="CONTAINER", help="The container's name (ccs ps).")],
    command: Annotated[list[str], typer.Argument(metavar="-- CMD...", help="The command and its arguments.")],
    cluster: ClusterOpt = None,
    interactive: Annotated[bool, typer.Option("-i", "--interactive", help="Stream stdin to the command.")] = False,
    tty: Annotated[bool, typer.Option("-t", "--tty", help="Give the command a terminal.")] = False,
) -> None:
    """Run a command in a running container; exits with the command's exit code."""
    # Options end at CONTAINER (so `ccs exec web ls -l` passes -l on); click then keeps a `--`.
    words = list(command[1:] if command and command[0] == "--" else command)
    if not words:
        raise typer.BadParameter("give the command to run after the container: ccs exec CONTAINER -- CMD...",
                                 param_hint="CMD")
    if tty and interactive and not sys.stdin.isatty():
        raise typer.BadParameter("stdin is not a terminal; leave -t out, or run from a terminal", param_hint="-t")
    s = session(ctx)
    c = s.cluster(cluster)
    code, message = s.run(lambda cl: run_exec(cl, c, container, words, interactive=interactive, tty=tty))
    if message:
        print(f"ccs exec: {message}", file=sys.stderr)
    raise typer.Exit(code)
