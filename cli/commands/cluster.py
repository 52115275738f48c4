"""``ccs cluster create|ls|get|update|rm|join-token``."""

from __future__ import annotations

from typing import Annotated

import typer

from ccs.v1 import resources_pb2
from cli.output import TABLE, LabelSelectorOpt, NoHeadersOpt, OutputOpt, age, emit, labels, select
from cli.session import parse_pairs, session

app = typer.Typer(help="Create, inspect and remove clusters.", no_args_is_help=True)

HEADERS = ("NAME", "DESCRIPTION", "POD CIDR", "ALLOWS", "LABELS", "AGE")
NameArg = Annotated[str, typer.Argument(help="Cluster name.")]


def row(c: resources_pb2.Cluster) -> list[str]:
    return [c.meta.name, c.description or "-", c.pod_cidr or "-", ",".join(c.policy.allow) or "-",
            labels(c.meta.labels), age(c.meta.created_at)]


@app.command("create")
def create(
    ctx: typer.Context,
    name: NameArg,
    description: Annotated[str, typer.Option("--description", "-d")] = "",
    label: Annotated[list[str] | None, typer.Option("--label", "-l", help="k=v")] = None,
    pod_cidr: Annotated[str, typer.Option(
        "--pod-cidr", help="IPv4 range for application network subnets (default: a free /12 of 10.0.0.0/8)")] = "",
    output: OutputOpt = TABLE,
) -> None:
    """Create a cluster."""
    lbls = parse_pairs(label or [], "--label")
    c = session(ctx).run(
        lambda cl: cl.clusters.create(name, description=description, labels=lbls, pod_cidr=pod_cidr))
    emit(c, output, HEADERS, row)


@app.command("ls")
def ls(
    ctx: typer.Context, selector: LabelSelectorOpt = None, output: OutputOpt = TABLE, no_headers: NoHeadersOpt = False
) -> None:
    """List clusters."""
    found = select(session(ctx).run(lambda cl: cl.clusters.list()), selector)
    emit(found, output, HEADERS, row, no_headers=no_headers)


@app.command("get")
def get(ctx: typer.Context, name: NameArg, output: OutputOpt = TABLE, no_headers: NoHeadersOpt = False) -> None:
    """Show one cluster."""
    emit(session(ctx).run(lambda cl: cl.clusters.get(name)), output, HEADERS, row, no_headers=no_headers)


def _names(values: list[str] | None) -> list[str]:
    """Comma-separated and repeated options as one list ("" adds nothing)."""
    return [n.strip() for v in values or [] for n in v.split(",") if n.strip()]


@app.command("update")
def update(
    ctx: typer.Context,
    name: NameArg,
    allow: Annotated[list[str] | None, typer.Option(
        "--allow", help="Let templates use these privileged keys, comma-separated (repeatable): privileged, "
        "cap_add, devices, network_mode, pid, security_opt, oom_score_adj.")] = None,
    deny: Annotated[list[str] | None, typer.Option(
        "--deny", help="Take these back (running applications keep what they were accepted with).")] = None,
    output: OutputOpt = TABLE,
) -> None:
    """Change the cluster's policy on privileged Compose keys."""
    allowed, denied = _names(allow), _names(deny)
    if not allowed and not denied:
        raise typer.BadParameter("give --allow or --deny", param_hint="'--allow'")
    c = session(ctx).run(lambda cl: cl.clusters.update(name, allow=allowed, deny=denied))
    emit(c, output, HEADERS, row)


@app.command("rm")
def rm(
    ctx: typer.Context,
    name: NameArg,
    force: Annotated[bool, typer.Option("--force", help="Also remove its nodes and apps.")] = False,
) -> None:
    """Remove a cluster (it must be empty unless --force)."""
    session(ctx).run(lambda cl: cl.clusters.delete(name, force=force))
    typer.echo(f"cluster {name} removed")


@app.command("join-token")
def join_token(
    ctx: typer.Context,
    name: NameArg,
    rotate: Annotated[bool, typer.Option("--rotate", help="Invalidate the old token.")] = False,
) -> None:
    """Print the token node agents present to join (only the token, for scripts)."""
    typer.echo(session(ctx).run(lambda cl: cl.clusters.join_token(name, rotate=rotate)))
