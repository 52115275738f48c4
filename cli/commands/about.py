"""``ccs version``: this client's version and the server's (``GetServerInfo``).

The client's version prints first, so it is there even when the server cannot be reached (the
command then exits with that error's code, 7 for an unreachable server).
"""

from __future__ import annotations

import typer

from ccs.v1 import api_pb2
from ccs.version import version
from cli.output import TABLE, Format, OutputOpt, dump, jsonpath_lines
from cli.session import session


def version_command(ctx: typer.Context, output: OutputOpt = TABLE) -> None:
    """Print the client's version and the server's (the API server that answers)."""
    s = session(ctx)
    client = version()
    if output.is_table:
        typer.echo(f"client: ccs {client}")
    info: api_pb2.ServerInfo = s.run(lambda cl: cl.clusters.server_info())
    server = s.connection().server
    data = {"client": client, "server": info.version, "server_address": server}
    if output.is_table:
        typer.echo(f"server: ccs {info.version} ({server})")
    elif output.format is Format.jsonpath:
        for line in jsonpath_lines(data, output):
            typer.echo(line)
    elif output.format is Format.name:
        typer.echo(f"version/{client}")
    else:
        typer.echo(dump(data, output))
