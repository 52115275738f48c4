"""``ccs registry login|ls|rm``: the cluster's registry logins.

The password is read from standard input (``--password-stdin``, as ``docker login`` takes it) so it
is never in the shell's history or the process list, goes up once, and is never printed: every
command shows host, user, whether a CA was given and age.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer

from ccs.v1 import resources_pb2
from cli.output import TABLE, NoHeadersOpt, OutputOpt, age, emit
from cli.session import ClusterOpt, fail, session

EXIT_INVALID = 4

registry_app = typer.Typer(help="Registry logins: the credentials nodes pull images with (never printed).",
                           no_args_is_help=True)

HEADERS = ("HOST", "USERNAME", "CA", "INSECURE", "AGE")
HostArg = Annotated[str, typer.Argument(help="The registry host[:port], as images name it.")]


def row(login: resources_pb2.RegistryLogin) -> list[str]:
    return [login.host, login.username, "yes" if login.has_ca else "-", "yes" if login.insecure else "-",
            age(login.created_at)]


@registry_app.command("login")
def login(
    ctx: typer.Context,
    host: HostArg,
    username: Annotated[str, typer.Option("--username", "-u", help="The registry user.")],
    password_stdin: Annotated[bool, typer.Option("--password-stdin", help="Read the password from stdin.")] = False,
    ca_file: Annotated[Path | None, typer.Option(
        "--ca-file", help="PEM CA the registry's certificate chains to, for the control plane's digest "
        "lookups (nodes' engines trust registries through /etc/docker/certs.d).")] = None,
    insecure: Annotated[bool, typer.Option(
        "--insecure", help="Let the control plane use plain HTTP with this registry when HTTPS fails (as an "
        "Engine's --insecure-registry; loopback registries always may).")] = False,
    cluster: ClusterOpt = None,
    output: OutputOpt = TABLE,
    no_headers: NoHeadersOpt = False,
) -> None:
    """Store (or replace) the cluster's login for registry HOST; the password comes from stdin."""
    if not password_stdin:
        raise typer.BadParameter("the password is read from standard input only: give --password-stdin",
                                 param_hint="--password-stdin")
    password = sys.stdin.read().rstrip("\r\n")  # as docker login: the trailing newline is not part of it
    ca_pem = ""
    if ca_file is not None:
        try:
            ca_pem = ca_file.read_text()
        except (OSError, UnicodeDecodeError) as exc:
            fail(f"--ca-file: cannot read {ca_file}: {getattr(exc, 'strerror', None) or exc}", EXIT_INVALID)
    s = session(ctx)
    c = s.cluster(cluster)
    emit(s.run(lambda cl: cl.registries.login(c, host, username, password, ca_pem=ca_pem,
                                                                insecure=insecure)), output, HEADERS, row,
         no_headers=no_headers)


@registry_app.command("ls")
def ls(ctx: typer.Context, cluster: ClusterOpt = None, output: OutputOpt = TABLE,
       no_headers: NoHeadersOpt = False) -> None:
    """List the cluster's registry logins (never a password)."""
    s = session(ctx)
    c = s.cluster(cluster)
    emit(s.run(lambda cl: cl.registries.list(c)), output, HEADERS, row, no_headers=no_headers)


@registry_app.command("rm")
def rm(ctx: typer.Context, host: HostArg, cluster: ClusterOpt = None) -> None:
    """Forget the cluster's login for registry HOST."""
    s = session(ctx)
    c = s.cluster(cluster)
    s.run(lambda cl: cl.registries.delete(c, host))
    typer.echo(f"registry login {host} removed")
