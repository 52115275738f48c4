"""``ccs node ls|get|drain|activate|pause|rm|label``."""

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
    age,
    emit,
    enum_name,
    labels,
    render,
    select,
)
from cli.session import ClusterOpt, parse_pairs, session

app = typer.Typer(help="Inspect and manage the nodes of a cluster.", no_args_is_help=True)

HEADERS = ("NAME", "STATE", "AVAILABILITY", "ROLE", "ADDRESS", "CPUS", "MEMORY", "LABELS", "AGE")
NodeArg = Annotated[str, typer.Argument(help="Node name.")]


def row(n: resources_pb2.Node) -> list[str]:
    cap = n.status.capacity
    return [
        n.meta.name,
        enum_name(n.status.state, resources_pb2.NodeState, "NODE_STATE_"),
        enum_name(n.spec.availability, resources_pb2.NodeAvailability, "NODE_AVAILABILITY_"),
        enum_name(n.spec.role, resources_pb2.NodeRole, "NODE_ROLE_"),
        n.status.address or "-",
        f"{cap.cpus:g}" if cap.cpus else "-",
        f"{cap.memory_bytes / 2**30:.1f}GiB" if cap.memory_bytes else "-",
        labels(n.meta.labels),
        age(n.meta.created_at),
    ]


WIDE = Wide(("ID", "UPDATED"), lambda n: [n.meta.id or "-", age(n.meta.updated_at)])


@app.command("ls")
def ls(
    ctx: typer.Context, cluster: ClusterOpt = None, selector: LabelSelectorOpt = None, output: OutputOpt = TABLE,
    no_headers: NoHeadersOpt = False,
) -> None:
    """List nodes."""
    s = session(ctx)
    c = s.cluster(cluster)
    emit(select(s.run(lambda cl: cl.nodes.list(c)), selector), output, HEADERS, row, wide=WIDE, no_headers=no_headers)


@app.command("get")
def get(
    ctx: typer.Context, name: NodeArg, cluster: ClusterOpt = None, output: OutputOpt = TABLE,
    no_headers: NoHeadersOpt = False,
) -> None:
    """Show one node."""
    s = session(ctx)
    c = s.cluster(cluster)
    emit(s.run(lambda cl: cl.nodes.get(c, name)), output, HEADERS, row, wide=WIDE, no_headers=no_headers)


def _set_availability(ctx: typer.Context, name: str, cluster: str | None, value: str) -> None:
    s = session(ctx)
    c = s.cluster(cluster)
    node = s.run(lambda cl: cl.nodes.update(c, name, availability=value))
    typer.echo(f"node {node.meta.name}: {row(node)[2]}")


@app.command("drain")
def drain(ctx: typer.Context, name: NodeArg, cluster: ClusterOpt = None) -> None:
    """Move the node's containers away and place nothing new on it."""
    _set_availability(ctx, name, cluster, "NODE_AVAILABILITY_DRAIN")


@app.command("pause")
def pause(ctx: typer.Context, name: NodeArg, cluster: ClusterOpt = None) -> None:
    """Place nothing new on the node; keep what runs there."""
    _set_availability(ctx, name, cluster, "NODE_AVAILABILITY_PAUSE")


@app.command("activate")
def activate(ctx: typer.Context, name: NodeArg, cluster: ClusterOpt = None) -> None:
    """Make the node schedulable again."""
    _set_availability(ctx, name, cluster, "NODE_AVAILABILITY_ACTIVE")


@app.command("rm")
def rm(
    ctx: typer.Context,
    name: NodeArg,
    cluster: ClusterOpt = None,
    force: Annotated[bool, typer.Option("--force", help="Remove even if it is up.")] = False,
) -> None:
    """Remove a node from the cluster; its certificates are revoked at once."""
    s = session(ctx)
    c = s.cluster(cluster)
    s.run(lambda cl: cl.nodes.delete(c, name, force=force))
    typer.echo(f"node {name} removed")


@app.command("revoke")
def revoke(ctx: typer.Context, name: NodeArg, cluster: ClusterOpt = None) -> None:
    """Revoke the node's certificates: its agent is refused at once and stops; the node stays
    listed (it goes down). Register the host again with a join token to bring it back."""
    s = session(ctx)
    c = s.cluster(cluster)
    n = s.run(lambda cl: cl.nodes.revoke(c, name))
    typer.echo(f"node {name}: {n} certificate(s) revoked")


@app.command("prune")
def prune(ctx: typer.Context, name: NodeArg, cluster: ClusterOpt = None, output: OutputOpt = TABLE) -> None:
    """Have the node's agent remove now the registry images nothing needs: none of its
    containers uses them and they are not among each service's last 3 images there (for
    rollback). Images without a registry (built or loaded on the node) are never removed."""
    s = session(ctx)
    c = s.cluster(cluster)
    result = s.run(lambda cl: cl.nodes.prune(c, name))
    if render(result, output):
        return
    typer.echo(f"node {name}: {result.images_removed} image(s) removed, {result.bytes_freed / 1e6:.1f} MB freed")
    for image in result.images:
        typer.echo(f"  {image}")
    if result.message:
        typer.echo(f"not removed: {result.message}")


@app.command("label")
def label(
    ctx: typer.Context,
    name: NodeArg,
    pairs: Annotated[list[str], typer.Argument(help="k=v to set, k= to remove.")],
    cluster: ClusterOpt = None,
    output: OutputOpt = TABLE,
) -> None:
    """Set (k=v) or remove (k=) node labels."""
    s = session(ctx)
    c = s.cluster(cluster)
    lbls = parse_pairs(pairs, "k=v")
    emit(s.run(lambda cl: cl.nodes.update(c, name, labels=lbls)), output, HEADERS, row)
