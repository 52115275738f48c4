"""``--build`` progress on stderr: each build step and each pushed layer.

As :mod:`cli.progress` does for ``--wait``: on a terminal a rich display (one line per build step
as the engine reports it, one bar per layer being pushed, bytes sent of its size); otherwise plain
lines without control characters, one per build step and one per layer each time its push status
changes (``web: layer 3f2a9c1b: Pushed``), so CI logs stay readable. stdout is left alone: it
carries what the deploy prints.
"""

from __future__ import annotations

import sys
from types import TracebackType
from typing import Protocol

import typer
from rich.console import Console
from rich.progress import BarColumn, DownloadColumn, TaskID, TextColumn
from rich.progress import Progress as RichProgress

__all__ = ["BuildReporter", "PlainBuildReporter", "RichBuildReporter", "build_reporter"]


class BuildReporter(Protocol):
    def step(self, service: str, text: str) -> None: ...

    def layer(self, service: str, layer: str, status: str, current: int, total: int) -> None: ...

    def __enter__(self) -> BuildReporter: ...

    def __exit__(
        self, et: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> None: ...


def _clean(text: str) -> str:
    return "".join(ch if ch.isprintable() else " " for ch in text).strip()


class PlainBuildReporter:
    """One line per build step and per change of a layer's push status."""

    def __init__(self) -> None:
        self._layers: dict[tuple[str, str], str] = {}

    def step(self, service: str, text: str) -> None:
        typer.echo(f"{service}: {_clean(text)}", err=True)

    def layer(self, service: str, layer: str, status: str, current: int, total: int) -> None:
        if self._layers.get((service, layer)) != status:
            self._layers[(service, layer)] = status
            typer.echo(f"{service}: layer {_clean(layer)}: {_clean(status)}", err=True)

    def __enter__(self) -> PlainBuildReporter:
        return self

    def __exit__(
        self, et: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> None:
        return None


class RichBuildReporter:
    """Build steps printed above the live bars; one bar per pushed layer."""

    def __init__(self, console: Console) -> None:
        self._console = console
        self._bars = RichProgress(
            TextColumn("{task.description}", style="bold"),
            BarColumn(),
            DownloadColumn(),
            TextColumn("{task.fields[status]}", style="dim"),
            console=console,
            transient=False,
        )
        self._tasks: dict[tuple[str, str], TaskID] = {}

    def step(self, service: str, text: str) -> None:
        self._bars.console.print(f"[bold]{service}[/bold] {_clean(text)}", markup=True, highlight=False)

    def layer(self, service: str, layer: str, status: str, current: int, total: int) -> None:
        key = (service, layer)
        if key not in self._tasks:
            self._tasks[key] = self._bars.add_task(f"{service} {layer}", total=None, status="")
        done = status in ("Pushed", "Layer already exists") or status.startswith("Mounted")
        self._bars.update(self._tasks[key], total=total or None, completed=total if done and total else current,
                          status=_clean(status))
        if done:
            self._bars.update(self._tasks[key], total=max(total, 1), completed=max(total, 1))

    def __enter__(self) -> RichBuildReporter:
        self._bars.start()
        return self

    def __exit__(
        self, et: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> None:
        self._bars.stop()


def build_reporter(console: Console | None = None) -> BuildReporter:
    """Rich on a terminal (stderr), plain lines otherwise."""
    console = console or Console(file=sys.stderr)
    return RichBuildReporter(console) if console.is_terminal else PlainBuildReporter()
