"""``ccs events [-f]``: the cluster's event log, and following it live (SDK ``watch``)."""

from __future__ import annotations

import json
from typing import Annotated

import typer

from ccs.client import AsyncClient
from ccs.v1 import api_pb2, resources_pb2
from cli.output import Format, OutputOpt, age, dump, emit, to_data
from cli.session import ClusterOpt, session

HEADERS = ("AGE", "TYPE", "REASON", "OBJECT", "MESSAGE")


def row(e: resources_pb2.Event) -> list[str]:
    return [age(e.meta.created_at), e.type or "-", e.reason or "-", f"{e.kind}/{e.object}",
            e.message]


def _print_live(e: resources_pb2.Event, output: Format) -> None:
    """One event as it arrives: a line, a JSON line, or a YAML document."""
    if output is Format.json:
        typer.echo(json.dumps(to_data(e), separators=(",", ":")))
    elif output is Format.yaml:
        typer.echo("---\n" + dump(to_data(e), output))
    else:
        typer.echo(_fixed(row(e)))


def _fixed(cells: list[str] | tuple[str, ...]) -> str:
    """Fixed-width columns: a live stream cannot know later rows' widths."""
    when, typ, reason, obj, msg = cells
    return f"{when:<5}  {typ:<8}  {reason:<16}  {obj:<30}  {msg}".rstrip()


def events(
    ctx: typer.Context,
    cluster: ClusterOpt = None,
    follow: Annotated[bool, typer.Option("-f", "--follow", help="Keep printing new events.")] = False,
    output: OutputOpt = Format.table,
) -> None:
    """Show the cluster's events; with -f, then follow new ones (reconnecting as needed)."""
    s = session(ctx)
    c = s.cluster(cluster)

    async def call(cl: AsyncClient) -> None:
        past = await cl.events.list(c)
        if not follow:
            emit(past, output, HEADERS, row)
            return
        if output is Format.table:
            typer.echo(_fixed(HEADERS))
        for e in past:
            _print_live(e, output)
        watch = cl.events.watch(c, from_revision=past.revision + 1, kinds=["event"])
        resp: api_pb2.WatchResponse
        async for resp in watch:
            for ev in resp.events:
                if ev.type == api_pb2.WatchEvent.TYPE_PUT:
                    _print_live(ev.event, output)

    s.run(call)
