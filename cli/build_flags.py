"""``--build`` / ``--push-to`` of ``ccs app deploy|update|apply``: the options and the one call
the commands make (load the bundle, build and push, return what to send).

Without ``--build`` the template goes as written, and the server refuses a ``build:`` service
without ``image:`` with a message that says to use ``--build`` (``controlplane.compose``). With it,
the server never sees ``build:`` for the services built: :func:`cli.build_plan.rewrite_template`
takes it out and sets ``image:`` to the pushed ``repo:tag@digest``.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Annotated

import typer
from ruamel.yaml import YAML
from ruamel.yaml.error import YAMLError

from ccs.template import find_template, load_bundle
from cli.build_plan import BuildError
from cli.push_auth import Fetch, push_auths

__all__ = ["BuildOpt", "PushToOpt", "bundle", "check_build_flags"]

BuildOpt = Annotated[
    bool,
    typer.Option("--build", help="Build the template's build: services with the local Docker engine, push them "
                 "(REGISTRY/APP/SERVICE:VERSION) and deploy the pushed images by digest; progress on stderr."),
]
PushToOpt = Annotated[
    str | None,
    typer.Option("--push-to", metavar="REGISTRY",
                 help="With --build: the registry (HOST[:PORT]) to push to (default: the registry the "
                 "service's image: names). Pushed with the cluster's login for that host (ccs registry "
                 "login), else with the local docker login; the progress says which."),
]


def check_build_flags(build: bool, push_to: str | None, dry_run: bool) -> None:
    """Usage errors before anything is built or sent."""
    if push_to is not None and not build:
        raise typer.BadParameter("only meaningful with --build", param_hint="--push-to")
    if build and dry_run:
        raise typer.BadParameter("cannot be combined with --dry-run (a build pushes images)", param_hint="--build")


async def bundle(
    file: Path,
    app: str,
    *,
    build: bool,
    push_to: str | None,
    version: str,
    check: Callable[[str, dict[str, str]], Awaitable[object]] | None = None,
    credential: Fetch | None = None,
) -> tuple[str, dict[str, str]]:
    """The template and files to send: as written, or with its ``build:`` services built.

    With ``--build``, ``check(template, files)`` (the command's own call as a dry run) first
    gets the template as it will be sent, tags in place of digests: a template the server
    refuses for anything else is refused before minutes of building and pushing, and nothing
    is pushed for it. ``credential(host)`` (the SDK's ``registries.push_credential`` for the
    cluster) gives the cluster's login for a registry host to push with (:mod:`cli.push_auth`)."""
    template, files = load_bundle(file)
    if not build:
        return template, files
    try:
        doc = YAML(typ="safe", pure=True).load(template)
    except YAMLError as exc:
        raise BuildError(f"template: not valid YAML: {exc}") from None
    # Here, not at the top: the build machinery loads the docker SDK (about 0.1 s), which no
    # other command needs.
    from cli.build_engine import plan_builds, run_builds
    from cli.build_progress import build_reporter

    plan = await asyncio.to_thread(plan_builds, template, doc, find_template(file).parent, app,
                                   push_to=push_to, version=version or None)
    if check is not None:
        await check(plan.preview(), files)
    auths = await push_auths(plan.hosts().values(), credential)
    return await asyncio.to_thread(run_builds, plan, build_reporter(), None, auths), files
