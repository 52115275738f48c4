"""``ccs audit ls [--since] [-f]``: the audit log (admin only), and following it live."""

from __future__ import annotations

import time
from typing import Annotated

import typer

from ccs.client import AsyncClient
from ccs.v1 import api_pb2, resources_pb2
from cli.commands.container import parse_since
from cli.output import TABLE, NoHeadersOpt, Output, OutputOpt, emit, print_live
from cli.session import session

app = typer.Typer(help="The audit log: every change, and every refused attempt.", no_args_is_help=True)

HEADERS = ("TIME", "WHO", "ROLE", "METHOD", "TARGET", "PEER", "RESULT", "MESSAGE")


def row(r: resources_pb2.AuditRecord) -> list[str]:
    when = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(r.meta.created_at.seconds))
    who = f"{r.token_name} ({r.token_id})" if r.token_name else "-"
    return [when, who, r.role or "-", r.method, r.target or "-", r.peer or "-", r.result, r.message or ""]


def _fixed(cells: list[str] | tuple[str, ...]) -> str:
    """Fixed-width columns: a live stream cannot know later rows' widths."""
    when, who, role, method, target, peer, result, message = cells
    return (f"{when:<20}  {who:<28}  {role:<8}  {method:<38}  {target:<30}  {peer:<22}  {result:<17}  "
            f"{message}").rstrip()


def _print_live(r: resources_pb2.AuditRecord, output: Output) -> None:
    print_live(r, output, lambda m: _fixed(row(m)))


@app.command("ls")
def ls(
    ctx: typer.Context,
    since: Annotated[str | None, typer.Option(
        "--since", help="Only records after: 10m, Unix seconds or an RFC 3339 time.")] = None,
    follow: Annotated[bool, typer.Option("-f", "--follow", help="Keep printing new records.")] = False,
    output: OutputOpt = TABLE,
    no_headers: NoHeadersOpt = False,
) -> None:
    """Show audit records (oldest first); with -f, then follow new ones (reconnecting as needed)."""
    since_ts = parse_since(since) if since else 0.0

    async def call(cl: AsyncClient) -> None:
        past = await cl.audit.list(since=since_ts)
        if not follow:
            emit(past, output, HEADERS, row, no_headers=no_headers)
            return
        if output.is_table and not no_headers:
            typer.echo(_fixed(HEADERS))
        for r in past:
            _print_live(r, output)
        resp: api_pb2.WatchAuditResponse
        async for resp in cl.audit.watch(from_revision=past.revision + 1):
            for r in resp.records:
                _print_live(r, output)

    session(ctx).run(call)
