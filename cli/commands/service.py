"""``ccs service ls|get|scale``."""

from __future__ import annotations

from typing import Annotated

import typer

from ccs.v1 import resources_pb2
from cli.output import (
    TABLE,
    LabelSelectorOpt,
    NoHeadersOpt,
    OutputOpt,
    Wide,
    emit,
    labels,
    object_labels,
    select,
    table,
)
from cli.session import ClusterOpt, session, split_service

app = typer.Typer(help="Inspect and scale the services of applications.", no_args_is_help=True)

HEADERS = ("APPLICATION", "SERVICE", "IMAGE", "REPLICAS", "HEALTHY", "PORTS")
RefArg = Annotated[str, typer.Argument(metavar="APP/SERVICE", help="Application/service.")]


ENDPOINT_HEADERS = ("CONTAINER", "NODE", "ENDPOINT", "TARGET")
ADDRESS_HEADERS = ("CONTAINER", "NODE", "NETWORK", "ADDRESS")


def address_row(a: resources_pb2.ContainerAddress) -> list[str]:
    return [a.container, a.node, a.network, a.address]


def endpoint_row(e: resources_pb2.Endpoint) -> list[str]:
    return [e.container, e.node, f"{e.address}:{e.published}", f"{e.target}/{e.protocol or 'tcp'}"]


def ports(spec: resources_pb2.ServiceSpec) -> str:
    out = [
        f"{p.published}:{p.target}/{p.protocol or 'tcp'}" if p.published
        else f"{p.target}/{p.protocol or 'tcp'}"
        for p in spec.ports
    ]
    return ",".join(out) or "-"


def row(s: resources_pb2.Service) -> list[str]:
    return [
        s.application,
        s.meta.name,
        s.spec.image or "-",
        f"{s.status.running}/{s.status.desired}",
        str(s.status.healthy),
        ports(s.spec),
    ]


WIDE = Wide(("GENERATION", "STRATEGY", "LABELS"), lambda s: [
    str(s.generation), s.spec.strategy or "-", labels(object_labels(s))])


@app.command("ls")
def ls(
    ctx: typer.Context,
    cluster: ClusterOpt = None,
    application: Annotated[str, typer.Option("-a", "--app", help="Only this app.")] = "",
    selector: LabelSelectorOpt = None,
    output: OutputOpt = TABLE,
    no_headers: NoHeadersOpt = False,
) -> None:
    """List services (of one application with -a); -l matches their Compose labels."""
    s = session(ctx)
    c = s.cluster(cluster)
    found = select(s.run(lambda cl: cl.services.list(c, application)), selector)
    emit(found, output, HEADERS, row, wide=WIDE, no_headers=no_headers)


@app.command("get")
def get(
    ctx: typer.Context, ref: RefArg, cluster: ClusterOpt = None, output: OutputOpt = TABLE,
    no_headers: NoHeadersOpt = False,
) -> None:
    """Show one service, its status message, the endpoints (node address:port) of its running
    containers and their addresses on the application network(s)."""
    app_name, name = split_service(ref)
    s = session(ctx)
    c = s.cluster(cluster)
    svc = s.run(lambda cl: cl.services.get(c, app_name, name))
    emit(svc, output, HEADERS, row, wide=WIDE, no_headers=no_headers)
    if output.is_table:
        if svc.status.message:
            typer.echo(f"\n{svc.status.message}")
        if svc.status.endpoints:
            typer.echo("")
            table(ENDPOINT_HEADERS, (endpoint_row(e) for e in svc.status.endpoints), no_headers=no_headers)
        if svc.status.addresses:
            typer.echo("")
            table(ADDRESS_HEADERS, (address_row(a) for a in svc.status.addresses), no_headers=no_headers)


@app.command("scale")
def scale(
    ctx: typer.Context,
    ref: RefArg,
    replicas: Annotated[int, typer.Argument(min=0, help="Desired number of containers.")],
    cluster: ClusterOpt = None,
    output: OutputOpt = TABLE,
) -> None:
    """Set the number of replicas of a service."""
    app_name, name = split_service(ref)
    s = session(ctx)
    c = s.cluster(cluster)
    emit(s.run(lambda cl: cl.services.scale(c, app_name, name, replicas)), output, HEADERS, row)
