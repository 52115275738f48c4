"""``ccs container ls|get`` (``ls`` is also ``ccs ps``) and ``ccs logs``."""

from __future__ import annotations

import contextlib
import sys
import time
from datetime import datetime
from typing import Annotated

import typer

from ccs import errors
from ccs.client import AsyncClient
from ccs.durations import DurationError, parse_seconds
from ccs.v1 import resources_pb2
from cli.output import TABLE, LabelSelectorOpt, NoHeadersOpt, OutputOpt, Wide, age, emit, enum_name, select
from cli.session import ClusterOpt, session, split_service

app = typer.Typer(help="Inspect containers.", no_args_is_help=True)

HEADERS = ("NAME", "APPLICATION", "SERVICE", "NODE", "STATE", "ADDRESS", "GENERATION", "AGE", "MESSAGE")


def addresses(c: resources_pb2.Container) -> str:
    """The container's address on its application network; ``NET=ADDR,...`` when it is on
    several; ``-`` when it has none (not running)."""
    found = sorted(c.status.addresses.items())
    if not found:
        return "-"
    if len(found) == 1:
        return found[0][1]
    return ",".join(f"{net}={addr}" for net, addr in found)


def row(c: resources_pb2.Container) -> list[str]:
    return [
        c.meta.name,
        c.application,
        c.service,
        c.node or "-",
        enum_name(c.status.state, resources_pb2.ContainerState, "CONTAINER_STATE_"),
        addresses(c),
        str(c.spec_generation),
        age(c.status.started_at if c.status.started_at.seconds else c.meta.created_at),
        c.status.message or "",
    ]


WIDE = Wide(("IMAGE", "REVISION", "EXIT", "DOCKER-ID"), lambda c: [
    c.spec.image or "-", str(c.app_revision), str(c.status.exit_code), c.status.docker_id[:12] or "-"])


@app.command("ls")
def ls(
    ctx: typer.Context,
    cluster: ClusterOpt = None,
    application: Annotated[str, typer.Option("-a", "--app", help="Only this app.")] = "",
    service: Annotated[str, typer.Option("-s", "--service", help="Only this service.")] = "",
    node: Annotated[str, typer.Option("-n", "--node", help="Only this node.")] = "",
    selector: LabelSelectorOpt = None,
    output: OutputOpt = TABLE,
    no_headers: NoHeadersOpt = False,
) -> None:
    """List containers, optionally filtered (-s needs -a; -l matches their Compose labels)."""
    if service and not application:
        raise typer.BadParameter("needs -a/--app too", param_hint="-s/--service")
    s = session(ctx)
    c = s.cluster(cluster)
    listing = s.run(
        lambda cl: cl.containers.list(c, application=application, service=service, node=node)
    )
    emit(select(listing, selector), output, HEADERS, row, wide=WIDE, no_headers=no_headers)


async def named(cl: AsyncClient, cluster: str, name: str) -> resources_pb2.Container:
    """One container by its name alone (names are unique in a cluster), as listed; NotFound
    naming it. The one lookup of ``ccs container get``, ``ccs logs CONTAINER`` and ``ccs exec``."""
    found = await cl.containers.list(cluster, name=name)  # matched by the server: only it comes back
    if not found:
        raise errors.NotFound(f"container {name!r} not found in cluster {cluster!r}")
    return found[0]


async def find(cl: AsyncClient, cluster: str, name: str) -> resources_pb2.Container:
    """One container by its name alone, read fresh."""
    c = await named(cl, cluster, name)
    return await cl.containers.get(cluster, c.application, c.service, name)


@app.command("get")
def get(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(metavar="CONTAINER", help="The container's name (as 'ccs ps' shows it).")],
    cluster: ClusterOpt = None,
    output: OutputOpt = TABLE,
    no_headers: NoHeadersOpt = False,
) -> None:
    """Show one container: its state, node, addresses and endpoints, image, and why it is not
    running (the status message)."""
    s = session(ctx)
    c = s.cluster(cluster)
    found = s.run(lambda cl: find(cl, c, name))
    emit(found, output, HEADERS, row, wide=WIDE, no_headers=no_headers)
    if output.is_table:
        typer.echo(f"\nimage:      {found.spec.image or '-'}")
        typer.echo(f"revision:   {found.app_revision} (generation {found.spec_generation})")
        if found.status.docker_id:
            typer.echo(f"docker id:  {found.status.docker_id}")
        for e in found.status.endpoints:
            typer.echo(f"endpoint:   {e.address}:{e.published} -> {e.target}/{e.protocol or 'tcp'}")


def parse_since(value: str, now: float | None = None) -> float:
    """``--since``: a duration back from now (``90s``, ``1m30s``, ``2h``, ``1d``: the syntax of
    ``ccs.durations``), Unix seconds, or an RFC 3339 time (``2026-11-26T05:00:00Z``) -> Unix
    seconds."""
    now = time.time() if now is None else now
    text = value.strip()
    with contextlib.suppress(DurationError):
        return now - parse_seconds(text)
    try:
        return float(text)
    except ValueError:
        pass
    try:
        return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()
    except ValueError:
        raise typer.BadParameter(
            f"{value!r}: expected a duration (10m), Unix seconds or an RFC 3339 time", param_hint="'--since'"
        ) from None


def logs(
    ctx: typer.Context,
    ref: Annotated[
        str,
        typer.Argument(metavar="APP/SERVICE|CONTAINER", help="Application/service, or one container's name."),
    ],
    cluster: ClusterOpt = None,
    container: Annotated[str, typer.Option("--container", help="Only this container.")] = "",
    follow: Annotated[bool, typer.Option("-f", "--follow", help="Keep streaming.")] = False,
    tail: Annotated[int, typer.Option("--tail", help="Lines from the end (0: all).")] = 0,
    since: Annotated[
        str | None, typer.Option("--since", help="Only lines after: 10m, Unix seconds or an RFC 3339 time.")
    ] = None,
) -> None:
    """Print the logs of a service's containers (each line prefixed with its container), or of
    one container named alone (``ccs logs web-1-3fa2c1``)."""
    since_ts = parse_since(since) if since else 0.0
    s = session(ctx)
    c = s.cluster(cluster)

    async def call(cl: AsyncClient) -> None:
        app_name, svc, name = "", "", container
        if "/" in ref:
            app_name, svc = split_service(ref)
        else:
            one = await named(cl, c, ref)
            app_name, svc, name = one.application, one.service, ref
        prefix = not name
        partial: dict[str, bytes] = {}  # a chunk may end mid-line
        out = sys.stdout.buffer
        async for chunk in cl.containers.logs(
            c, app_name, svc, name, follow=follow, tail=tail, since=since_ts
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
