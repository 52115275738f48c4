"""``ccs app apply``: create or update an application in one idempotent command, for CI.

Registered on ``ccs app`` (``cli.commands.app.app``). The SDK's ``applications.apply`` decides
(created / updated / unchanged, see ``ccs.apply_outcome``); this module parses the flags, builds
first with ``--build``, and prints the outcome: ``application NAME: unchanged`` (or ``created``,
``updated``) after the usual table on stdout, or on stderr with any other ``-o`` (json, yaml,
name, jsonpath) so stdout stays what that format prints. An unchanged application exits 0 like
any success: a CI job that re-applies the same commit passes without releasing anything.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from ccs.apply_outcome import ApplyResult
from ccs.client import AsyncClient
from ccs.errors import NotFound
from ccs.release_phases import awaits_operator
from ccs.template import default_app_name
from cli.build_flags import BuildOpt, PushToOpt, bundle, check_build_flags
from cli.commands import release as rel_cmd
from cli.commands.app import (
    EnvOpt,
    LabelOpt,
    ProfileOpt,
    Strategy,
    TimeoutOpt,
    VersionOpt,
    WaitOpt,
    _show,
    _wait_timeout,
    app,
)
from cli.output import TABLE, OutputOpt
from cli.progress import wait_for_app
from cli.session import ClusterOpt, parse_pairs, session

__all__ = ["apply"]


@app.command("apply")
def apply(
    ctx: typer.Context,
    file: Annotated[Path, typer.Option("-f", "--file", help="Compose file, or its directory.")],
    cluster: ClusterOpt = None,
    name: Annotated[str | None, typer.Option("--name", help="Default: the directory name.")] = None,
    env: EnvOpt = None,
    version: VersionOpt = "",
    label: LabelOpt = None,
    profile: ProfileOpt = None,
    strategy: Annotated[
        Strategy | None, typer.Option("--strategy", help="Release strategy when it updates.")
    ] = None,
    build: BuildOpt = False,
    push_to: PushToOpt = None,
    output: OutputOpt = TABLE,
    wait: WaitOpt = False,
    timeout: TimeoutOpt = None,
) -> None:
    """Create the application, or update it to this template and these parameters (--env and
    --profile replace the stored ones); unchanged: no release, exit 0, prints 'unchanged'."""
    s = session(ctx)
    c = s.cluster(cluster)
    env_map, labels = parse_pairs(env or [], "--env"), parse_pairs(label or [], "--label")
    wait_for = _wait_timeout(wait, timeout, False)
    check_build_flags(build, push_to, False)

    async def run(cl: AsyncClient) -> None:
        app_name = default_app_name(file) if name is None else name
        profiles = profile or []
        template, files = await bundle(file, app_name, build=build, push_to=push_to, version=version,
                                       check=lambda t, f: _dry_run(cl, c, app_name, t, f, env_map, version, profiles),
                                       credential=lambda host: cl.registries.push_credential(c, host))
        result: ApplyResult = await cl.applications.apply(
            c, app_name, template, env=env_map, files=files, version=version, labels=labels,
            profiles=profiles, strategy=strategy.value if strategy else "",
        )
        _show(result.application, output)
        typer.echo(f"application {app_name}: {result.outcome}", err=not output.is_table)
        if wait_for is None:
            return
        if result.outcome == "updated":
            rel = await rel_cmd.follow_revision(cl, c, result.application, timeout=wait_for, err=True)
            if rel is not None and awaits_operator(rel.status):
                return  # blue-green, new side up: as `app update --wait` (cli/commands/app.py)
        await wait_for_app(cl, c, app_name, wait_for)

    s.run(run)


async def _dry_run(cl: AsyncClient, cluster: str, name: str, template: str, files: dict[str, str],
                   env: dict[str, str], version: str, profiles: list[str]) -> None:
    """Before ``--build``: the server checks the template as apply will send it (a dry run of
    the create or the update it will make), so a refused one is refused before building."""
    try:
        await cl.applications.get(cluster, name)
    except NotFound:
        await cl.applications.create(cluster, name, template, env=env, files=files, version=version,
                                     profiles=profiles, dry_run=True)
        return
    await cl.applications.update(cluster, name, template=template, files=files, env=env, replace_env=True,
                                 version=version, profiles=profiles, clear_profiles=not profiles, dry_run=True)
