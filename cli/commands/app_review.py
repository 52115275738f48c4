"""``ccs app diff`` and ``ccs app history``: what an update would change, and what earlier ones did.

``diff`` asks the server (``DiffApplication``: the update's own dry run, so parameters are
interpolated and defaults applied exactly as the update would, and every check the update makes
refuses the diff too) and renders the answer with ``ccs.spec_diff``. Like ``diff(1)`` it tells
"different" apart from "same" by its exit code, but 1 already means "any other error" in ccs, so
a difference is exit 12 (``EXIT_DIFFERENT``; the table is in ``cli/__init__.py``).
"""

from __future__ import annotations

import os
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated

import typer

from ccs import errors
from ccs.client import AsyncClient
from ccs.spec_diff import has_changes, render
from ccs.template import load_bundle
from ccs.v1 import api_pb2, resources_pb2
from cli.commands.images import pins_text
from cli.output import TABLE, Format, NoHeadersOpt, OutputOpt, age, emit
from cli.output import render as render_data
from cli.session import EXIT_DIFFERENT, ClusterOpt, parse_pairs, session

HISTORY_HEADERS = ("REVISION", "NOTE", "VERSION", "TEMPLATE", "IMAGES", "AUTHOR", "CREATED", "AGE")


def diff(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="Application name.")],
    cluster: ClusterOpt = None,
    file: Annotated[
        Path | None, typer.Option("-f", "--file", help="The new Compose file (or directory); none: the current one.")
    ] = None,
    env: Annotated[
        list[str] | None, typer.Option("--env", "-e", help="K=V deploy-time parameter (repeatable).")
    ] = None,
    replace_env: Annotated[
        bool, typer.Option("--replace-env", help="Replace all parameters instead of merging.")
    ] = False,
    version: Annotated[str, typer.Option("--version", help="The version string the update would set.")] = "",
    profile: Annotated[
        list[str] | None, typer.Option("--profile", help="The Compose profiles the update would choose (repeatable).")
    ] = None,
    no_profiles: Annotated[bool, typer.Option("--no-profiles", help="As 'app update --no-profiles'.")] = False,
    no_color: Annotated[bool, typer.Option("--no-color", help="No colours (also: NO_COLOR set, or not a terminal).")]
    = False,
    output: OutputOpt = TABLE,
) -> None:
    """Show what 'ccs app update' with the same options would change, service by service, as a
    unified diff (image, replicas, environment, ports, routes, resources first). Exit 0: no
    difference; 12: differences; other codes as 'app update' (it runs every check the update runs)."""
    if profile and no_profiles:
        raise typer.BadParameter("cannot be combined with --profile", param_hint="'--no-profiles'")
    s = session(ctx)
    c = s.cluster(cluster)
    env_map = parse_pairs(env or [], "--env")

    async def call(cl: AsyncClient) -> api_pb2.DiffApplicationResponse:
        template, files = load_bundle(file) if file is not None else ("", {})
        return await cl.applications.diff(
            c, name, template=template, files=files, env=env_map, replace_env=replace_env, version=version,
            profiles=profile or [], clear_profiles=no_profiles,
        )

    resp = s.run(call)
    if output.format is Format.name:  # the services the update would change
        for svc in resp.services:
            if svc.change != "unchanged":
                typer.echo(f"service/{svc.name}")
    elif not render_data(resp, output):
        color = not no_color and not os.environ.get("NO_COLOR") and sys.stdout.isatty()
        text = render(resp, color=color)
        if text:
            typer.echo(text)
    if has_changes(resp):
        raise typer.Exit(EXIT_DIFFERENT)


def _when(ts: resources_pb2.ApplicationRevision) -> str:
    seconds = ts.meta.created_at.seconds
    return datetime.fromtimestamp(seconds, UTC).strftime("%Y-%m-%dT%H:%M:%SZ") if seconds else "-"


def history_row(r: resources_pb2.ApplicationRevision) -> list[str]:
    digest = r.template_digest.removeprefix("sha256:")
    return [str(r.revision), r.note or "-", r.spec.version or "-", f"sha256:{digest[:12]}" if digest else "-",
            pins_text(r.spec.pinned_images), r.author or "-", _when(r), age(r.meta.created_at)]


def history(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="Application name.")],
    cluster: ClusterOpt = None,
    revision: Annotated[
        int | None, typer.Option("--revision", min=1, help="One revision: its template (with -o yaml|json: the whole "
                                 "revision: spec, parameters, version).")
    ] = None,
    output: OutputOpt = TABLE,
    no_headers: NoHeadersOpt = False,
) -> None:
    """List the application's revisions (oldest first): what made each (deploy, update, rollback),
    its version, its template's digest, the token that made it and when."""
    s = session(ctx)
    c = s.cluster(cluster)

    async def call(cl: AsyncClient) -> list[resources_pb2.ApplicationRevision]:
        revisions = await cl.applications.revisions(c, name)
        if revision is None:
            return revisions
        found = [r for r in revisions if r.revision == revision]
        if not found:
            known = f"{revisions[0].revision}..{revisions[-1].revision}" if revisions else "none"
            raise errors.NotFound(f"revision {revision} of application {name!r} not found (revisions: {known})")
        return found

    revisions = s.run(call)
    if revision is None:
        emit(revisions, output, HISTORY_HEADERS, history_row, no_headers=no_headers)
    elif not render_data(revisions[0], output):
        typer.echo(revisions[0].spec.template, nl=not revisions[0].spec.template.endswith("\n"))
