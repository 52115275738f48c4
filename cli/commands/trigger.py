"""``ccs trigger create|ls|rm|rotate|run``: deploy triggers for CI jobs and webhooks.

``create`` and ``rotate`` print the trigger's URL and secret on stdout, once, as shell
assignments (``ccs trigger create shop --action redeploy > trigger.env``, then ``. trigger.env``
in the job: ``CCS_TRIGGER_URL`` and ``CCS_TRIGGER_SECRET``); what was made goes to stderr. The
secret is never shown again: not by ``ls``, not in ``-o json``. ``run`` fires a trigger with
this context's token (the ``trigger`` role's one call).
"""

from __future__ import annotations

import shlex
from typing import Annotated

import typer

from ccs.triggers import ACTIONS, action_name
from ccs.v1 import triggers_pb2
from cli.output import TABLE, NoHeadersOpt, OutputOpt, age, emit
from cli.session import ClusterOpt, session

app = typer.Typer(help="Deploy triggers: signed HTTPS calls that redeploy, retag or scale an application.",
                  no_args_is_help=True)

HEADERS = ("APPLICATION", "NAME", "ACTION", "SERVICE", "CALLBACK", "SECRET", "URL", "AGE")
AppArg = Annotated[str, typer.Argument(help="Application name.")]
NameOpt = Annotated[str, typer.Option("--name", help="Trigger name, unique within the application.")]


def row(t: triggers_pb2.Trigger) -> list[str]:
    return [t.application, t.meta.name, action_name(t.action), t.service or "-", t.callback_url or "-",
            f"v{t.secret_version}", t.url or "- (--http-listen off)", age(t.meta.created_at)]


def _print_once(made: triggers_pb2.CreateTriggerResponse, verb: str) -> None:
    t = made.trigger
    what = action_name(t.action) + (f" {t.service}" if t.service else "")
    typer.echo(f"trigger {t.application}/{t.meta.name} ({what}) {verb}; its secret is shown only now", err=True)
    if not t.url:
        typer.echo("the server's HTTPS endpoint is off (--http-listen off): call it with `ccs trigger run`",
                   err=True)
    typer.echo(f"CCS_TRIGGER_URL={shlex.quote(t.url)}")
    typer.echo(f"CCS_TRIGGER_SECRET={shlex.quote(made.secret)}")


@app.command("create")
def create(
    ctx: typer.Context,
    application: AppArg,
    action: Annotated[str, typer.Option("--action", help="redeploy, update-image or scale.")],
    service: Annotated[str, typer.Option("--service", help="The service update-image and scale act on.")] = "",
    callback: Annotated[str, typer.Option("--callback", help="URL that gets the final phase (signed POST).")] = "",
    name: NameOpt = "",
    cluster: ClusterOpt = None,
) -> None:
    """Make a trigger; print its URL and secret (once) as shell assignments."""
    if action not in ACTIONS:
        raise typer.BadParameter(f"{action!r}: use one of {', '.join(ACTIONS)}", param_hint="--action")
    s = session(ctx)
    c = s.cluster(cluster)
    made = s.run(lambda cl: cl.triggers.create(c, application, name or action, action, service=service,
                                               callback_url=callback))
    _print_once(made, "created")


@app.command("ls")
def ls(ctx: typer.Context, application: Annotated[str, typer.Argument(help="Application (default: all).")] = "",
       cluster: ClusterOpt = None, output: OutputOpt = TABLE, no_headers: NoHeadersOpt = False) -> None:
    """List triggers (never their secrets)."""
    s = session(ctx)
    c = s.cluster(cluster)
    emit(s.run(lambda cl: cl.triggers.list(c, application)), output, HEADERS, row, no_headers=no_headers)


@app.command("rm")
def rm(ctx: typer.Context, application: AppArg,
       name: Annotated[str, typer.Argument(help="Trigger name.")], cluster: ClusterOpt = None) -> None:
    """Remove a trigger: its URL answers 404 from now on."""
    s = session(ctx)
    c = s.cluster(cluster)
    s.run(lambda cl: cl.triggers.delete(c, application, name))
    typer.echo(f"trigger {application}/{name} removed")


@app.command("rotate")
def rotate(ctx: typer.Context, application: AppArg,
           name: Annotated[str, typer.Argument(help="Trigger name.")], cluster: ClusterOpt = None) -> None:
    """A new secret, printed once; the old one stops working at once."""
    s = session(ctx)
    c = s.cluster(cluster)
    _print_once(s.run(lambda cl: cl.triggers.rotate(c, application, name)), "rotated")


@app.command("run")
def run(
    ctx: typer.Context,
    application: AppArg,
    name: Annotated[str, typer.Argument(help="Trigger name.")],
    tag: Annotated[str, typer.Option("--tag", help="update-image: the new tag.")] = "",
    replicas: Annotated[int | None, typer.Option("--replicas", min=0, help="scale: the replicas.")] = None,
    version: Annotated[str, typer.Option("--version", help="The application's new version.")] = "",
    cluster: ClusterOpt = None,
    output: OutputOpt = TABLE,
) -> None:
    """Fire a trigger with this context's token (a `trigger` token may do only this)."""
    s = session(ctx)
    c = s.cluster(cluster)
    done = s.run(lambda cl: cl.triggers.invoke(c, application, name, tag=tag, replicas=replicas, version=version))
    if not output.is_table:
        emit(done, output, ("TRIGGER", "RESULT", "RELEASE", "STATUS URL"),
             lambda r: [r.trigger, r.result, r.release or "-", r.status_url or "-"])
        return
    typer.echo(done.message or done.result)
    if done.release:
        typer.echo(f"release {done.release}" + (f"; status: {done.status_url}" if done.status_url else ""))
