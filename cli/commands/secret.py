"""``ccs secret create|update|ls|get|rm|rotate-key`` and ``ccs config create|update|ls|get|rm``.

A secret's value goes up once (from a file or stdin) and is never printed: every command shows
name, versions, digest, size and age. ``ccs config get NAME --data`` prints a config's value.
"""

from __future__ import annotations

import sys
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Annotated, Any

import typer

from ccs.v1 import resources_pb2
from cli.output import TABLE, NoHeadersOpt, OutputOpt, age, emit
from cli.session import ClusterOpt, fail, session

EXIT_INVALID = 4

secret_app = typer.Typer(help="Secrets: encrypted, versioned; mounted by Compose secrets:. Never printed.",
                         no_args_is_help=True)
config_app = typer.Typer(help="Configs: versioned files mounted by Compose configs:.", no_args_is_help=True)

HEADERS = ("NAME", "VERSION", "VERSIONS", "DIGEST", "SIZE", "APPLICATION", "AGE")
NameArg = Annotated[str, typer.Argument(help="Name (NAME@N for a version, where a version is read).")]
FileOpt = Annotated[Path | None, typer.Option("--file", "-f", help="Read the value from this file.")]
StdinOpt = Annotated[bool, typer.Option("--from-stdin", help="Read the value from standard input.")]


def row(s: resources_pb2.Secret | resources_pb2.Config) -> list[str]:
    return [s.name, str(s.version), ",".join(str(v) for v in s.versions), s.digest[:19], str(s.size),
            s.application or "-", age(s.created_at)]


def _value(file: Path | None, from_stdin: bool) -> bytes:
    if (file is None) == (not from_stdin):
        raise typer.BadParameter("give exactly one of --file/-f FILE or --from-stdin", param_hint="--file")
    if from_stdin:
        return sys.stdin.buffer.read()
    assert file is not None
    try:
        return file.read_bytes()
    except OSError as exc:  # an invalid argument (exit 4), as a template's missing env_file is
        fail(f"--file: cannot read {file}: {exc.strerror}", EXIT_INVALID)


def _namespace(kind: str) -> Callable[[Any], Any]:
    return (lambda cl: cl.secrets) if kind == "secret" else (lambda cl: cl.configs)


def _commands(app: typer.Typer, kind: str) -> None:
    ns = _namespace(kind)

    def call(ctx: typer.Context, cluster: str | None, fn: Callable[[Any, str], Awaitable[Any]]) -> Any:
        s = session(ctx)
        c = s.cluster(cluster)
        return s.run(lambda cl: fn(ns(cl), c))

    @app.command("create")
    def create(ctx: typer.Context, name: NameArg, file: FileOpt = None, from_stdin: StdinOpt = False,
               cluster: ClusterOpt = None, output: OutputOpt = TABLE) -> None:
        data = _value(file, from_stdin)
        emit(call(ctx, cluster, lambda n, c: n.create(c, name, data)), output, HEADERS, row)

    create.__doc__ = f"Create {kind} NAME (version 1) from a file or stdin."

    @app.command("update")
    def update(ctx: typer.Context, name: NameArg, file: FileOpt = None, from_stdin: StdinOpt = False,
               cluster: ClusterOpt = None, output: OutputOpt = TABLE) -> None:
        data = _value(file, from_stdin)
        emit(call(ctx, cluster, lambda n, c: n.update(c, name, data)), output, HEADERS, row)

    update.__doc__ = f"A new version of {kind} NAME; services mounting it unpinned roll to it."

    @app.command("ls")
    def ls(ctx: typer.Context, cluster: ClusterOpt = None, output: OutputOpt = TABLE,
           no_headers: NoHeadersOpt = False) -> None:
        emit(call(ctx, cluster, lambda n, c: n.list(c)), output, HEADERS, row, no_headers=no_headers)

    ls.__doc__ = f"List the cluster's {kind}s (latest version of each)."

    @app.command("rm")
    def rm(ctx: typer.Context, name: NameArg, cluster: ClusterOpt = None) -> None:
        call(ctx, cluster, lambda n, c: n.delete(c, name))
        typer.echo(f"{kind} {name} removed")

    rm.__doc__ = f"Remove every version of {kind} NAME; refused (exit 5) while a service mounts it."


_commands(secret_app, "secret")
_commands(config_app, "config")


@secret_app.command("get")
def secret_get(ctx: typer.Context, name: NameArg, cluster: ClusterOpt = None, output: OutputOpt = TABLE,
               no_headers: NoHeadersOpt = False) -> None:
    """Show a secret version's name, versions, digest, size and age (never its value)."""
    s = session(ctx)
    c = s.cluster(cluster)
    emit(s.run(lambda cl: cl.secrets.get(c, name)), output, HEADERS, row, no_headers=no_headers)


@secret_app.command("rotate-key")
def rotate_key(ctx: typer.Context) -> None:
    """A new secrets data key; every stored secret and config is re-encrypted under it (admin)."""
    s = session(ctx)
    res = s.run(lambda cl: cl.secrets.rotate_key())
    typer.echo(f"secrets data key generation {res.key_generation}; {res.reencrypted} value(s) re-encrypted")


@config_app.command("get")
def config_get(ctx: typer.Context, name: NameArg, cluster: ClusterOpt = None, output: OutputOpt = TABLE,
               data: Annotated[bool, typer.Option("--data", help="Print the value itself.")] = False,
               no_headers: NoHeadersOpt = False) -> None:
    """Show a config version; --data prints its value."""
    s = session(ctx)
    c = s.cluster(cluster)
    config = s.run(lambda cl: cl.configs.get(c, name))
    if data:
        sys.stdout.buffer.write(config.data)
        return
    config.ClearField("data")
    emit(config, output, HEADERS, row, no_headers=no_headers)
