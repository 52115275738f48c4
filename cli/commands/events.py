"""``ccs events [-f] [--since 10m] [--type KIND] [--app APP]``: the cluster's event log, and
following it live (SDK ``watch``).

The filters apply the same way to the listed and to the followed events (``EventFilter``, a pure
predicate): ``--since`` on the event's creation time, ``--type`` on the kind of object it is about,
``--app`` on the application it concerns (the application itself, and its services, containers
and releases, whose event objects are named ``APP/...``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Annotated

import typer

from ccs.client import AsyncClient
from ccs.v1 import api_pb2, resources_pb2
from cli.commands.container import parse_since
from cli.output import TABLE, NoHeadersOpt, Output, OutputOpt, age, emit, print_live
from cli.session import ClusterOpt, session

HEADERS = ("AGE", "TYPE", "REASON", "OBJECT", "MESSAGE")
KINDS = ("cluster", "node", "network", "application", "service", "container", "release")
"""The kinds of object events are recorded about (``Event.kind``)."""


def row(e: resources_pb2.Event) -> list[str]:
    return [age(e.meta.created_at), e.type or "-", e.reason or "-", f"{e.kind}/{e.object}",
            e.message]


@dataclass(frozen=True)
class EventFilter:
    """Which events to show: created at or after ``since`` (Unix seconds; 0: all), about an
    object of one of ``kinds`` (empty: any), concerning application ``app`` (empty: any)."""

    since: float = 0.0
    kinds: Sequence[str] = ()
    app: str = ""

    def __call__(self, e: resources_pb2.Event) -> bool:
        created = e.meta.created_at.seconds + e.meta.created_at.nanos / 1e9
        if self.since and created < self.since:
            return False
        if self.kinds and e.kind not in self.kinds:
            return False
        if self.app:
            return (e.kind == "application" and e.object == self.app) or (
                e.kind in ("service", "container", "release") and e.object.startswith(self.app + "/"))
        return True


def _kinds(values: list[str] | None) -> list[str]:
    out = [v.strip().lower() for value in values or [] for v in value.split(",") if v.strip()]
    for k in out:
        if k not in KINDS:
            raise typer.BadParameter(f"{k!r} is not one of {', '.join(KINDS)}", param_hint="'--type'")
    return out


def _print_live(e: resources_pb2.Event, output: Output) -> None:
    print_live(e, output, lambda m: _fixed(row(m)))


def _fixed(cells: list[str] | tuple[str, ...]) -> str:
    """Fixed-width columns: a live stream cannot know later rows' widths."""
    when, typ, reason, obj, msg = cells
    return f"{when:<5}  {typ:<8}  {reason:<16}  {obj:<30}  {msg}".rstrip()


def events(
    ctx: typer.Context,
    cluster: ClusterOpt = None,
    follow: Annotated[bool, typer.Option("-f", "--follow", help="Keep printing new events.")] = False,
    since: Annotated[
        str | None, typer.Option("--since", help="Only events after: 10m, Unix seconds or an RFC 3339 time.")
    ] = None,
    kind: Annotated[
        list[str] | None,
        typer.Option("--type", "-t", help=f"Only events about this kind of object: {', '.join(KINDS)} "
                     "(repeatable or comma-separated)."),
    ] = None,
    application: Annotated[
        str, typer.Option("-a", "--app", help="Only events of this app (its services, containers, releases too).")
    ] = "",
    output: OutputOpt = TABLE,
    no_headers: NoHeadersOpt = False,
) -> None:
    """Show the cluster's events; with -f, then follow new ones (reconnecting as needed)."""
    wanted = EventFilter(since=parse_since(since) if since else 0.0, kinds=_kinds(kind), app=application)
    s = session(ctx)
    c = s.cluster(cluster)

    async def call(cl: AsyncClient) -> None:
        past = await cl.events.list(c)
        shown = [e for e in past if wanted(e)]
        if not follow:
            emit(shown, output, HEADERS, row, no_headers=no_headers)
            return
        if output.is_table and not no_headers:
            typer.echo(_fixed(HEADERS))
        for e in shown:
            _print_live(e, output)
        watch = cl.events.watch(c, from_revision=past.revision + 1, kinds=["event"])
        resp: api_pb2.WatchResponse
        async for resp in watch:
            for ev in resp.events:
                if ev.type == api_pb2.WatchEvent.TYPE_PUT and wanted(ev.event):
                    _print_live(ev.event, output)

    s.run(call)
