"""``ccs network create|ls|get|rm``: the cluster networks applications share on purpose."""

from __future__ import annotations

from typing import Annotated

import typer

from ccs.v1 import resources_pb2
from cli.output import TABLE, LabelSelectorOpt, NoHeadersOpt, OutputOpt, age, emit, labels, select
from cli.session import ClusterOpt, parse_pairs, session

app = typer.Typer(
    help="Cluster networks: applications join one with a Compose network marked external: true.",
    no_args_is_help=True,
)

HEADERS = ("NAME", "DESCRIPTION", "APPLICATIONS", "LABELS", "AGE")
NameArg = Annotated[str, typer.Argument(help="Network name.")]


def row(n: resources_pb2.ClusterNetwork) -> list[str]:
    return [n.meta.name, n.description or "-", ",".join(n.applications) or "-", labels(n.meta.labels),
            age(n.meta.created_at)]


@app.command("create")
def create(
    ctx: typer.Context,
    name: NameArg,
    cluster: ClusterOpt = None,
    description: Annotated[str, typer.Option("--description", "-d")] = "",
    label: Annotated[list[str] | None, typer.Option("--label", "-l", help="k=v")] = None,
    output: OutputOpt = TABLE,
) -> None:
    """Create a network that applications join with `networks: {NAME: {external: true}}`."""
    s = session(ctx)
    c = s.cluster(cluster)
    lbls = parse_pairs(label or [], "--label")
    emit(s.run(lambda cl: cl.networks.create(c, name, description=description, labels=lbls)), output, HEADERS, row)


@app.command("ls")
def ls(
    ctx: typer.Context, cluster: ClusterOpt = None, selector: LabelSelectorOpt = None, output: OutputOpt = TABLE,
    no_headers: NoHeadersOpt = False,
) -> None:
    """List the cluster's networks and the applications joining each."""
    s = session(ctx)
    c = s.cluster(cluster)
    emit(select(s.run(lambda cl: cl.networks.list(c)), selector), output, HEADERS, row, no_headers=no_headers)


@app.command("get")
def get(
    ctx: typer.Context, name: NameArg, cluster: ClusterOpt = None, output: OutputOpt = TABLE,
    no_headers: NoHeadersOpt = False,
) -> None:
    """Show one network and the applications joining it."""
    s = session(ctx)
    c = s.cluster(cluster)
    emit(s.run(lambda cl: cl.networks.get(c, name)), output, HEADERS, row, no_headers=no_headers)


@app.command("rm")
def rm(ctx: typer.Context, name: NameArg, cluster: ClusterOpt = None) -> None:
    """Remove a network; refused (exit 5, naming them) while applications join it."""
    s = session(ctx)
    c = s.cluster(cluster)
    s.run(lambda cl: cl.networks.delete(c, name))
    typer.echo(f"network {name} removed")
