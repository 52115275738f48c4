"""``ccs container ls`` (also ``ccs ps``) and ``ccs logs``."""

from __future__ import annotations

import sys
from typing import Annotated

import typer

from ccs.client import AsyncClient
from ccs.v1 import resources_pb2
from cli.output import Format, OutputOpt, age, emit, enum_name
from cli.session import ClusterOpt, session, split_service

app = typer.Typer(help="Inspect containers.", no_args_is_help=True)

HEADERS = ("NAME", "APPLICATION", "SERVICE", "NODE", "STATE", "GENERATION", "AGE", "MESSAGE")


def row(c: resources_pb2.Container) -> list[str]:
    return [
        c.meta.name,
        c.application,
        c.service,
        c.node or "-",
        enum_name(c.status.state, resources_pb2.ContainerState, "CONTAINER_STATE_"),
        str(c.spec_generation),
        age(c.status.started_at if c.status.started_at.seconds else c.meta.created_at),
        c.status.message or "",
    ]


@app.command("ls")
def ls(
    ctx: typer.Context,
    cluster: ClusterOpt = None,
    application: Annotated[str, typer.Option("-a", "--app", help="Only this app.")] = "",
    service: Annotated[str, typer.Option("-s", "--service", help="Only this service.")] = "",
    node: Annotated[str, typer.Option("-n", "--node", help="Only this node.")] = "",
    output: OutputOpt = Format.table,
) -> None:
    """List containers, optionally filtered (-s needs -a)."""
    if service and not application:
        raise typer.BadParameter("needs -a/--app too", param_hint="-s/--service")
    s = session(ctx)
    c = s.cluster(cluster)
    listing = s.run(
        lambda cl: cl.containers.list(c, application=application, service=service, node=node)
    )
    emit(listing, output, HEADERS, row)


def logs(
    ctx: typer.Context,
    ref: Annotated[str, typer.Argument(metavar="APP/SERVICE", help="Application/service.")],
    cluster: ClusterOpt = None,
    container: Annotated[str, typer.Option("--container", help="Only this container.")] = "",
    follow: Annotated[bool, typer.Option("-f", "--follow", help="Keep streaming.")] = False,
    tail: Annotated[int, typer.Option("--tail", help="Lines from the end (0: all).")] = 0,
) -> None:
    """Print the logs of a service's containers (each line prefixed with its container)."""
    app_name, svc = split_service(ref)
    s = session(ctx)
    c = s.cluster(cluster)
    prefix = not container

    async def call(cl: AsyncClient) -> None:
        partial: dict[str, bytes] = {}  # a chunk may end mid-line
        out = sys.stdout.buffer
        async for chunk in cl.containers.logs(
            c, app_name, svc, container, follow=follow, tail=tail
        ):
            if not prefix:
                out.write(chunk.data)
            else:
                *lines, rest = (partial.pop(chunk.container, b"") + chunk.data).split(b"\n")
                partial[chunk.container] = rest
                for line in lines:
                    out.write(chunk.container.encode() + b" | " + line + b"\n")
            out.flush()
        for name, rest in partial.items():
            if rest:
                out.write(name.encode() + b" | " + rest + b"\n")

    s.run(call)
