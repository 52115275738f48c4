"""``--wait``: follow a deploy until it is ready, showing progress, and map its outcome to exit codes.

Design choices:

- The SDK does the waiting (``client.applications.wait``, a watch, not polling); this module only
  renders the ``ccs.wait.Progress`` snapshots it reports and turns its errors into the CLI's exit
  codes: 8 when the deploy failed (image not found, crash loop, no node fits), 9 on timeout.
- Progress goes to **stderr**, so stdout is exactly what the command prints without ``--wait``
  (``-o json`` stays parseable) and a script can still read the progress.
- On a terminal: a rich live display, one bar per service (healthy of desired) and its status
  message. Otherwise (pipes, CI, ``subprocess``): plain lines, one per change of a service
  (``web 2/3 running 1/3 healthy: waiting for db ...``) or of the application's phase, with no
  control characters, so logs stay readable and grep-able.
"""

from __future__ import annotations

import sys
import time
from types import TracebackType
from typing import Protocol

import typer
from rich.console import Console
from rich.progress import BarColumn, TaskID, TextColumn
from rich.progress import Progress as RichProgress

from ccs.client import AsyncClient
from ccs.durations import DurationError, format_duration, parse_seconds
from ccs.errors import DeployFailed, WaitTimeout
from ccs.wait import Progress
from cli.session import fail

__all__ = [
    "DEFAULT_TIMEOUT",
    "EXIT_DEPLOY_FAILED",
    "EXIT_TIMED_OUT",
    "PlainReporter",
    "RichReporter",
    "parse_duration",
    "wait_for_app",
]

EXIT_DEPLOY_FAILED = 8
EXIT_TIMED_OUT = 9
DEFAULT_TIMEOUT = "5m"


def parse_duration(text: str, option: str = "--timeout") -> float:
    """A duration in the one syntax of ``ccs.durations`` (``90s``, ``1m30s``, ``500ms``, ``1d``)
    or plain seconds (``45``, ``2.5``) -> seconds (> 0).

    Anything else is a usage error naming ``option``.
    """
    try:
        seconds = parse_seconds(text, bare_seconds=True)
    except DurationError as exc:
        raise typer.BadParameter(f"{text!r}: {exc}", param_hint=option) from None
    if not seconds > 0:
        raise typer.BadParameter(f"{text!r}: must be more than 0 seconds", param_hint=option)
    return seconds


class Reporter(Protocol):
    def update(self, progress: Progress) -> None: ...

    def __enter__(self) -> Reporter: ...

    def __exit__(
        self, et: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> None: ...


class PlainReporter:
    """One plain line per change of a service's counts or message, or of the phase."""

    def __init__(self) -> None:
        self._lines: dict[str, str] = {}
        self._phase = ""

    def update(self, progress: Progress) -> None:
        if progress.phase and progress.phase != self._phase:
            self._phase = progress.phase
            typer.echo(f"application {progress.application}: {progress.phase}", err=True)
        for s in progress.services:
            line = _clean(s.line())
            if self._lines.get(s.name) != line:
                self._lines[s.name] = line
                typer.echo(line, err=True)

    def __enter__(self) -> PlainReporter:
        return self

    def __exit__(
        self, et: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> None:
        return None


class RichReporter:
    """A live display on the terminal: one bar per service (healthy of desired)."""

    def __init__(self, console: Console) -> None:
        self._bars = RichProgress(
            TextColumn("{task.description}", style="bold"),
            BarColumn(),
            TextColumn("{task.fields[counts]}"),
            TextColumn("{task.fields[detail]}", style="dim"),
            console=console,
            transient=False,
        )
        self._tasks: dict[str, TaskID] = {}

    def update(self, progress: Progress) -> None:
        for s in progress.services:
            counts = f"{s.healthy}/{s.desired} healthy, {s.running}/{s.desired} running"
            if s.outdated:
                counts += f", {s.updated}/{s.desired} updated"
            detail = s.line().partition(": ")[2]
            if s.name not in self._tasks:
                self._tasks[s.name] = self._bars.add_task(s.name, total=s.desired, counts="", detail="")
            self._bars.update(
                self._tasks[s.name], total=max(s.desired, 1), completed=s.healthy if s.desired else
                int(s.ready), counts=counts, detail=detail,
            )

    def __enter__(self) -> RichReporter:
        self._bars.start()
        return self

    def __exit__(
        self, et: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> None:
        self._bars.stop()


def reporter_for(console: Console | None = None) -> Reporter:
    """Rich on a terminal (stderr), plain lines otherwise."""
    console = console or Console(file=sys.stderr)
    return RichReporter(console) if console.is_terminal else PlainReporter()


async def wait_for_app(client: AsyncClient, cluster: str, name: str, seconds: float) -> Progress:
    """Wait for ``name`` with live progress on stderr; on failure print one ``error:`` line
    and exit 8 (deploy failed) or 9 (timed out)."""
    started = time.monotonic()
    reporter = reporter_for()
    try:
        with reporter:
            progress = await client.applications.wait(
                cluster, name, timeout=seconds, on_progress=reporter.update
            )
    except DeployFailed as exc:
        fail(exc.message, EXIT_DEPLOY_FAILED)
    except WaitTimeout as exc:
        fail(exc.message, EXIT_TIMED_OUT)
    desired = sum(s.desired for s in progress.services)
    typer.echo(
        f"application {name} is ready: {len(progress.services)} service(s), "
        f"{desired}/{desired} healthy ({format_duration(round(time.monotonic() - started, 1))})",
        err=True,
    )
    return progress


def _clean(text: str) -> str:
    """No control characters in plain output (a status message is data from the server)."""
    return "".join(ch if ch.isprintable() else " " for ch in text)
