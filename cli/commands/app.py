"""``ccs app deploy|ls|get|update|rm|start|stop``."""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer

from ccs.client import AsyncClient
from ccs.template import default_app_name, load_bundle
from ccs.v1 import resources_pb2
from cli.commands import service
from cli.output import Format, OutputOpt, age, dump, emit, enum_name, table, to_data
from cli.session import ClusterOpt, parse_pairs, session

app = typer.Typer(help="Deploy and manage applications (Compose templates).", no_args_is_help=True)

HEADERS = ("NAME", "STATE", "PHASE", "VERSION", "SERVICES", "RUNNING", "REVISION", "AGE")
AppArg = Annotated[str, typer.Argument(help="Application name.")]
EnvOpt = Annotated[
    list[str] | None, typer.Option("--env", "-e", help="K=V deploy-time parameter (repeatable).")
]
LabelOpt = Annotated[list[str] | None, typer.Option("--label", "-l", help="k=v (repeatable).")]
VersionOpt = Annotated[str, typer.Option("--version", help="A version string for this release.")]
DryRunOpt = Annotated[bool, typer.Option("--dry-run", help="Validate only; write nothing.")]


class Strategy(StrEnum):
    rolling = "rolling"
    blue_green = "blue-green"
    canary = "canary"


def row(a: resources_pb2.Application) -> list[str]:
    st = a.status
    return [
        a.meta.name,
        enum_name(a.spec.desired_state, resources_pb2.DesiredState, "DESIRED_STATE_"),
        st.phase or "-",
        a.spec.version or "-",
        str(st.services),
        f"{st.containers_running}/{st.containers_desired}",
        str(a.revision),
        age(a.meta.created_at),
    ]


def _show(a: resources_pb2.Application, output: Format) -> None:
    emit(a, output, HEADERS, row)
    for w in a.warnings:
        typer.echo(f"warning: {w}", err=True)


@app.command("deploy")
def deploy(
    ctx: typer.Context,
    file: Annotated[Path, typer.Option("-f", "--file", help="Compose file, or its directory.")],
    cluster: ClusterOpt = None,
    name: Annotated[str | None, typer.Option("--name", help="Default: the directory name.")] = None,
    env: EnvOpt = None,
    version: VersionOpt = "",
    label: LabelOpt = None,
    dry_run: DryRunOpt = False,
    output: OutputOpt = Format.table,
) -> None:
    """Deploy a Compose template (with its .env and env_files) as a new application."""
    s = session(ctx)
    c = s.cluster(cluster)
    env_map, labels = parse_pairs(env or [], "--env"), parse_pairs(label or [], "--label")

    async def call(cl: AsyncClient) -> resources_pb2.Application:
        template, files = load_bundle(file)
        return await cl.applications.create(
            c, name or default_app_name(file), template, env=env_map, files=files,
            version=version, labels=labels, dry_run=dry_run,
        )

    _show(s.run(call), output)


@app.command("ls")
def ls(ctx: typer.Context, cluster: ClusterOpt = None, output: OutputOpt = Format.table) -> None:
    """List applications."""
    s = session(ctx)
    c = s.cluster(cluster)
    emit(s.run(lambda cl: cl.applications.list(c)), output, HEADERS, row)


@app.command("get")
def get(
    ctx: typer.Context, name: AppArg, cluster: ClusterOpt = None, output: OutputOpt = Format.table
) -> None:
    """Show an application and its services."""
    s = session(ctx)
    c = s.cluster(cluster)
    resp = s.run(lambda cl: cl.applications.get(c, name))
    if output is not Format.table:
        typer.echo(dump(to_data(resp), output))
        return
    table(HEADERS, [row(resp.application)])
    typer.echo()
    table(service.HEADERS, [service.row(x) for x in resp.services])
    if resp.application.status.message:
        typer.echo(f"\n{resp.application.status.message}")


@app.command("update")
def update(
    ctx: typer.Context,
    name: AppArg,
    cluster: ClusterOpt = None,
    file: Annotated[
        Path | None, typer.Option("-f", "--file", help="A new Compose file (or directory).")
    ] = None,
    env: EnvOpt = None,
    replace_env: Annotated[
        bool, typer.Option("--replace-env", help="Replace all parameters instead of merging.")
    ] = False,
    version: VersionOpt = "",
    strategy: Annotated[
        Strategy | None, typer.Option("--strategy", help="Release strategy for this update.")
    ] = None,
    label: LabelOpt = None,
    dry_run: DryRunOpt = False,
    output: OutputOpt = Format.table,
) -> None:
    """Release a new template, parameters or version of an application."""
    s = session(ctx)
    c = s.cluster(cluster)
    env_map, labels = parse_pairs(env or [], "--env"), parse_pairs(label or [], "--label")

    async def call(cl: AsyncClient) -> resources_pb2.Application:
        template, files = load_bundle(file) if file is not None else ("", {})
        return await cl.applications.update(
            c, name, template=template, files=files, env=env_map, replace_env=replace_env,
            version=version, labels=labels, strategy=strategy.value if strategy else "",
            dry_run=dry_run,
        )

    _show(s.run(call), output)


@app.command("rm")
def rm(
    ctx: typer.Context,
    name: AppArg,
    cluster: ClusterOpt = None,
    keep_volumes: Annotated[
        bool, typer.Option("--keep-volumes", help="Keep anonymous volumes on the nodes.")
    ] = False,
) -> None:
    """Remove an application, its services and containers."""
    s = session(ctx)
    c = s.cluster(cluster)
    s.run(lambda cl: cl.applications.delete(c, name, keep_volumes=keep_volumes))
    typer.echo(f"application {name} removed")


@app.command("start")
def start(
    ctx: typer.Context, name: AppArg, cluster: ClusterOpt = None, output: OutputOpt = Format.table
) -> None:
    """Start a stopped application."""
    s = session(ctx)
    c = s.cluster(cluster)
    _show(s.run(lambda cl: cl.applications.start(c, name)), output)


@app.command("stop")
def stop(
    ctx: typer.Context, name: AppArg, cluster: ClusterOpt = None, output: OutputOpt = Format.table
) -> None:
    """Stop an application's containers (keeping its definition)."""
    s = session(ctx)
    c = s.cluster(cluster)
    _show(s.run(lambda cl: cl.applications.stop(c, name)), output)
