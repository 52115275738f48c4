"""The ``ccs`` command: the typer app, its global options and sub-commands.

Errors become exit codes in ``cli.session`` (the table is in ``cli/__init__.py``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from ccs.version import version
from cli.commands import (
    about,
    app_apply,  # noqa: F401  (registers `ccs app apply`)
    audit,
    cluster,
    container,
    container_exec,
    context,
    events,
    login,
    network,
    node,
    registry,
    release,
    route,
    secret,
    service,
    token,
    trigger,
    whoami,
)
from cli.commands import app as app_cmd
from cli.session import Session

app = typer.Typer(
    name="ccs",
    help="ccs: a self-hosted container service. Deploy Compose apps onto your own nodes.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)


def _print_version(value: bool) -> None:
    if value:
        typer.echo(f"ccs {version()}")
        raise typer.Exit()


@app.callback()
def root(
    ctx: typer.Context,
    context: Annotated[
        str | None, typer.Option("--context", envvar="CCS_CONTEXT", help="Context from the config.")
    ] = None,
    config: Annotated[
        Path | None,
        typer.Option("--config", envvar="CCS_CONFIG", help="Default: ~/.config/ccs/config.yaml."),
    ] = None,
    server: Annotated[
        str | None, typer.Option("--server", envvar="CCS_SERVER", help="host:port of the API.")
    ] = None,
    token: Annotated[
        str | None, typer.Option("--token", envvar="CCS_TOKEN", help="Bearer token.")
    ] = None,
    ca_file: Annotated[
        Path | None,
        typer.Option("--ca-file", envvar="CCS_CA_FILE",
                     help="PEM CA the server must chain to (default: the context's pinned CA)."),
    ] = None,
    insecure: Annotated[
        bool,
        typer.Option("--insecure", envvar="CCS_INSECURE",
                     help="Plaintext, for a server started with --insecure (the token travels in clear)."),
    ] = False,
    _version: Annotated[
        bool,
        typer.Option("--version", is_eager=True, callback=_print_version, help="Print the client's version and exit."),
    ] = False,
) -> None:
    """Global options; they override the selected context."""
    ctx.obj = Session(context=context, config=config, server=server, token=token, ca_file=ca_file,
                      insecure=insecure)


app.add_typer(cluster.app, name="cluster")
app.add_typer(node.app, name="node")
app.add_typer(app_cmd.app, name="app")
app.add_typer(service.app, name="service")
app.add_typer(container.app, name="container")
app.add_typer(release.app, name="release")
app.add_typer(route.app, name="route")
app.add_typer(network.app, name="network")
app.add_typer(secret.secret_app, name="secret")
app.add_typer(secret.config_app, name="config")
app.add_typer(registry.registry_app, name="registry")
app.add_typer(token.app, name="token")
app.add_typer(trigger.app, name="trigger")
app.add_typer(audit.app, name="audit")
app.add_typer(context.app, name="context")
app.command("ps", help="List containers (alias of 'container ls').")(container.ls)
app.command("logs")(container.logs)
app.command("exec", context_settings={"allow_interspersed_args": False})(container_exec.exec_command)
app.command("events")(events.events)
app.command("login")(login.login)
app.command("version")(about.version_command)
app.command("whoami")(whoami.whoami_command)


def main() -> None:
    """Console-script entry point."""
    app(prog_name="ccs")


if __name__ == "__main__":
    main()
