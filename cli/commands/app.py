"""``ccs app deploy|ls|get|update|rm|start|stop|rollback``.

``apply``: ``cli.commands.app_apply``; ``diff`` and ``history``: ``cli.commands.app_review``.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer

from ccs.client import AsyncClient
from ccs.models import CanaryOptions
from ccs.release_phases import awaits_operator
from ccs.template import default_app_name
from ccs.v1 import resources_pb2
from cli.build_flags import BuildOpt, PushToOpt, bundle, check_build_flags
from cli.commands import app_review, images, service
from cli.commands import release as rel_cmd
from cli.output import (
    TABLE,
    LabelSelectorOpt,
    NoHeadersOpt,
    Output,
    OutputOpt,
    Wide,
    age,
    emit,
    enum_name,
    labels,
    render,
    select,
    table,
)
from cli.progress import DEFAULT_TIMEOUT, parse_duration, wait_for_app
from cli.session import ClusterOpt, Session, parse_pairs, session

app = typer.Typer(help="Deploy and manage applications (Compose templates).", no_args_is_help=True)

HEADERS = ("NAME", "STATE", "PHASE", "VERSION", "SERVICES", "RUNNING", "REVISION", "AGE")
AppArg = Annotated[str, typer.Argument(help="Application name.")]
EnvOpt = Annotated[
    list[str] | None, typer.Option("--env", "-e", help="K=V deploy-time parameter (repeatable).")
]
LabelOpt = Annotated[list[str] | None, typer.Option("--label", "-l", help="k=v (repeatable).")]
VersionOpt = Annotated[str, typer.Option("--version", help="A version string for this release.")]
DryRunOpt = Annotated[bool, typer.Option("--dry-run", help="Validate only; write nothing.")]
ProfileOpt = Annotated[
    list[str] | None,
    typer.Option("--profile", help="Also deploy the services of this Compose profile (repeatable; '*': all). "
                 "Kept by later updates until changed."),
]
WaitOpt = Annotated[
    bool,
    typer.Option(
        "--wait",
        help="Wait until every service runs its new version, healthy; progress on stderr. "
        "Exit 8 if the deploy fails (image, crash loop, no node fits), 9 on timeout.",
    ),
]
TimeoutOpt = Annotated[
    str | None,
    typer.Option(
        "--timeout", help=f"With --wait: 90s, 1m30s, 1h, 1d or seconds (default {DEFAULT_TIMEOUT})."
    ),
]


def _wait_timeout(wait: bool, timeout: str | None, dry_run: bool) -> float | None:
    """Seconds to wait, or None without --wait; usage errors before anything is sent."""
    if not wait:
        if timeout is not None:
            raise typer.BadParameter("only meaningful with --wait", param_hint="--timeout")
        return None
    if dry_run:
        raise typer.BadParameter("cannot be combined with --dry-run", param_hint="--wait")
    return parse_duration(timeout or DEFAULT_TIMEOUT)


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


WIDE = Wide(("TEMPLATE-REVISION", "PROFILES", "LABELS"), lambda a: [
    str(a.spec.template_revision), ",".join(a.spec.profiles) or "-", labels(a.meta.labels)])


def _show(a: resources_pb2.Application, output: Output) -> None:
    emit(a, output, HEADERS, row, wide=WIDE)
    for w in a.warnings:
        typer.echo(f"warning: {w}", err=True)


@app.command("deploy")
def deploy(
    ctx: typer.Context,
    file: Annotated[Path, typer.Option("-f", "--file", help="Compose file, or its directory.")],
    cluster: ClusterOpt = None,
    name: Annotated[
        str | None,
        typer.Option("--name", help="Default: the directory name. An empty name is refused."),
    ] = None,
    env: EnvOpt = None,
    version: VersionOpt = "",
    label: LabelOpt = None,
    profile: ProfileOpt = None,
    dry_run: DryRunOpt = False,
    output: OutputOpt = TABLE,
    wait: WaitOpt = False,
    timeout: TimeoutOpt = None,
    build: BuildOpt = False,
    push_to: PushToOpt = None,
) -> None:
    """Deploy a Compose template (with its .env and env_files) as a new application."""
    s = session(ctx)
    c = s.cluster(cluster)
    env_map, labels = parse_pairs(env or [], "--env"), parse_pairs(label or [], "--label")
    wait_for = _wait_timeout(wait, timeout, dry_run)
    check_build_flags(build, push_to, dry_run)

    async def create(cl: AsyncClient) -> resources_pb2.Application:
        # Only an absent --name means "the directory name": an explicit "" goes to the
        # server, which refuses it naming the field (exit 4), like any other bad name.
        app_name = default_app_name(file) if name is None else name

        def send(template: str, files: dict[str, str], dry: bool) -> Awaitable[resources_pb2.Application]:
            return cl.applications.create(c, app_name, template, env=env_map, files=files, version=version,
                                          labels=labels, dry_run=dry, profiles=profile or [])

        template, files = await bundle(file, app_name, build=build, push_to=push_to, version=version,
                                       check=lambda t, f: send(t, f, True),
                                       credential=lambda host: cl.registries.push_credential(c, host))
        return await send(template, files, dry_run)

    _change(s, c, create, output, wait_for, follow_release=False)


@app.command("ls")
def ls(
    ctx: typer.Context, cluster: ClusterOpt = None, selector: LabelSelectorOpt = None, output: OutputOpt = TABLE,
    no_headers: NoHeadersOpt = False,
) -> None:
    """List applications."""
    s = session(ctx)
    c = s.cluster(cluster)
    found = select(s.run(lambda cl: cl.applications.list(c)), selector)
    emit(found, output, HEADERS, row, wide=WIDE, no_headers=no_headers)


@app.command("get")
def get(
    ctx: typer.Context, name: AppArg, cluster: ClusterOpt = None, output: OutputOpt = TABLE,
    no_headers: NoHeadersOpt = False,
) -> None:
    """Show an application and its services."""
    s = session(ctx)
    c = s.cluster(cluster)
    resp = s.run(lambda cl: cl.applications.get(c, name))
    if render(resp, output):
        return
    emit(resp.application, output, HEADERS, row, wide=WIDE, no_headers=no_headers)
    typer.echo()
    emit(list(resp.services), output, service.HEADERS, service.row, wide=service.WIDE, no_headers=no_headers)
    typer.echo()
    table(images.HEADERS, images.image_rows(resp.services, resp.application.spec.pinned_images), no_headers=no_headers)
    if resp.application.spec.profiles:
        typer.echo(f"\nprofiles: {', '.join(resp.application.spec.profiles)}")
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
    steps: Annotated[
        str | None,
        typer.Option("--steps", help="Canary steps, e.g. '10%,pause 30s,50%,pause 30s,100%' ('pause' alone: "
                     "wait for ccs release promote)."),
    ] = None,
    canary_replicas: Annotated[int, typer.Option("--canary-replicas", min=0, help="Canary containers.")] = 0,
    max_5xx_ratio: Annotated[
        float | None,
        typer.Option("--max-5xx-ratio", min=0.0, max=1.0,
                     help="Canary: abort above this 5xx ratio (0 disables; default: the server's, 0.05)."),
    ] = None,
    min_requests: Annotated[
        int | None,
        typer.Option("--min-requests", min=0,
                     help="Canary: judge the 5xx ratio after this many requests (default: the server's, 20)."),
    ] = None,
    match_header: Annotated[str, typer.Option("--match-header", help="A/B: route by this request header.")] = "",
    match_cookie: Annotated[str, typer.Option("--match-cookie", help="A/B: route by this cookie.")] = "",
    match_value: Annotated[str, typer.Option("--match-value", help="A/B: the header/cookie value.")] = "",
    label: LabelOpt = None,
    profile: Annotated[
        list[str] | None,
        typer.Option("--profile", help="Replace the chosen Compose profiles (repeatable; none given keeps them)."),
    ] = None,
    no_profiles: Annotated[
        bool, typer.Option("--no-profiles", help="Deploy only the services without a profile from now on.")
    ] = False,
    dry_run: DryRunOpt = False,
    output: OutputOpt = TABLE,
    wait: WaitOpt = False,
    timeout: TimeoutOpt = None,
    build: BuildOpt = False,
    push_to: PushToOpt = None,
) -> None:
    """Release a new template, parameters or version of an application."""
    if profile and no_profiles:
        raise typer.BadParameter("cannot be combined with --profile", param_hint="'--no-profiles'")
    check_build_flags(build, push_to, dry_run)
    if build and file is None:
        raise typer.BadParameter("needs -f FILE (the template whose build: services to build)", param_hint="--build")
    s = session(ctx)
    c = s.cluster(cluster)
    env_map, labels = parse_pairs(env or [], "--env"), parse_pairs(label or [], "--label")
    wait_for = _wait_timeout(wait, timeout, dry_run)
    parsed_steps = rel_cmd.steps_option(steps)
    canary = None
    if strategy is Strategy.canary:
        canary = CanaryOptions(
            replicas=canary_replicas, steps=parsed_steps or [], max_5xx_ratio=max_5xx_ratio,
            min_requests=min_requests, match_header=match_header, match_cookie=match_cookie,
            match_value=match_value,
        )
    elif (parsed_steps or canary_replicas or max_5xx_ratio is not None or min_requests is not None
          or match_header or match_cookie or match_value):
        raise typer.BadParameter("canary options need --strategy canary", param_hint="'--strategy'")

    async def update(cl: AsyncClient) -> resources_pb2.Application:
        def send(template: str, files: dict[str, str], dry: bool) -> Awaitable[resources_pb2.Application]:
            return cl.applications.update(
                c, name, template=template, files=files, env=env_map, replace_env=replace_env,
                version=version, labels=labels, strategy=strategy.value if strategy else "",
                canary=canary, dry_run=dry, profiles=profile or [], clear_profiles=no_profiles,
            )

        template, files = ("", {}) if file is None else await bundle(
            file, name, build=build, push_to=push_to, version=version, check=lambda t, f: send(t, f, True),
            credential=lambda host: cl.registries.push_credential(c, host))
        return await send(template, files, dry_run)

    _change(s, c, update, output, wait_for)


@app.command("rollback")
def rollback(
    ctx: typer.Context,
    name: AppArg,
    cluster: ClusterOpt = None,
    to_revision: Annotated[
        int, typer.Option("--to-revision", min=0, help="Revision to restore (default: the previous one).")
    ] = 0,
    strategy: Annotated[
        Strategy | None, typer.Option("--strategy", help="Release strategy for the rollback.")
    ] = None,
    output: OutputOpt = TABLE,
    wait: WaitOpt = False,
    timeout: TimeoutOpt = None,
) -> None:
    """Restore every service of the application to an earlier revision, in one step."""
    s = session(ctx)
    c = s.cluster(cluster)
    wait_for = _wait_timeout(wait, timeout, False)

    _change(s, c, lambda cl: cl.applications.rollback(
        c, name, to_revision, strategy.value if strategy else ""), output, wait_for)


def _change(
    s: Session,
    cluster: str,
    call: Callable[[AsyncClient], Awaitable[resources_pb2.Application]],
    output: Output,
    wait_for: float | None,
    *,
    follow_release: bool = True,
) -> None:
    """Make one change to an application and show the result at once. With ``--wait``, then
    follow the release the change started (if any) and wait for every service to be ready, on
    the same connection, so a CI job gets one exit code for the whole rollout."""

    async def run(cl: AsyncClient) -> None:
        changed = await call(cl)
        _show(changed, output)
        if wait_for is None:
            return
        if follow_release:
            rel = await rel_cmd.follow_revision(cl, cluster, changed, timeout=wait_for, err=True)
            if rel is not None and awaits_operator(rel.status):
                return  # blue-green, new side up: the old side stays until the operator's confirm
        await wait_for_app(cl, cluster, changed.meta.name, wait_for)

    s.run(run)


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
    ctx: typer.Context, name: AppArg, cluster: ClusterOpt = None, output: OutputOpt = TABLE
) -> None:
    """Start a stopped application."""
    s = session(ctx)
    c = s.cluster(cluster)
    _show(s.run(lambda cl: cl.applications.start(c, name)), output)


@app.command("stop")
def stop(
    ctx: typer.Context, name: AppArg, cluster: ClusterOpt = None, output: OutputOpt = TABLE
) -> None:
    """Stop an application's containers (keeping its definition)."""
    s = session(ctx)
    c = s.cluster(cluster)
    _show(s.run(lambda cl: cl.applications.stop(c, name)), output)


app.command("diff")(app_review.diff)
app.command("history")(app_review.history)
