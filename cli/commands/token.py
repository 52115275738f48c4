"""``ccs token create|ls|revoke``: API tokens with roles (admin only).

``create`` prints the secret alone on stdout (``TOKEN=$(ccs token create ci --role deployer
--cluster prod)``) and what was created on stderr: the secret is shown this once, and never in
``-o json`` or any other output.
"""

from __future__ import annotations

import time
from typing import Annotated

import typer

from ccs.durations import DurationError, parse_seconds
from ccs.v1 import resources_pb2
from cli.output import TABLE, NoHeadersOpt, OutputOpt, age, emit
from cli.session import session

app = typer.Typer(help="Create, list and revoke API tokens (admin only).", no_args_is_help=True)

HEADERS = ("NAME", "ID", "ROLE", "SCOPE", "STATE", "EXPIRES", "CREATED BY", "AGE")


def _utc(seconds: int) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(seconds))


def scope(t: resources_pb2.Token) -> str:
    parts = [f"cluster={c}" for c in t.clusters] + [f"app={a}" for a in t.applications]
    return ",".join(parts) or "-"


def state(t: resources_pb2.Token, now: float | None = None) -> str:
    now = time.time() if now is None else now
    if t.revoked_at.seconds:
        return "revoked"
    if t.expires_at.seconds and t.expires_at.seconds <= now:
        return "expired"
    return "active"


def row(t: resources_pb2.Token) -> list[str]:
    expires = _utc(t.expires_at.seconds) if t.expires_at.seconds else "never"
    return [t.meta.name, t.meta.id, t.role, scope(t), state(t), expires, t.created_by or "-",
            age(t.meta.created_at)]


def parse_ttl(value: str) -> int:
    """``--ttl``: a duration (``30d``, ``12h``) of at least a second -> whole seconds."""
    try:
        seconds = parse_seconds(value)
    except DurationError as e:
        raise typer.BadParameter(str(e), param_hint="'--ttl'") from None
    if seconds < 1:
        raise typer.BadParameter(f"{value!r}: must be at least 1s", param_hint="'--ttl'")
    return round(seconds)


@app.command("create")
def create(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="Token name (unique among tokens not revoked).")],
    role: Annotated[str, typer.Option(
        "--role", help="admin, deployer, viewer or trigger (one application's triggers only).")],
    cluster: Annotated[list[str] | None, typer.Option(
        "--cluster", help="Limit the role to this cluster (repeatable; default: all).")] = None,
    application: Annotated[list[str] | None, typer.Option(
        "--app", help="Limit a deployer's changes and logs to this application (repeatable; default: all).")] = None,
    ttl: Annotated[str | None, typer.Option(
        "--ttl", help="Lifetime, e.g. 30d or 12h (default: never expires).")] = None,
) -> None:
    """Create a token and print it (only the token, on stdout). It is shown this once."""
    seconds = parse_ttl(ttl) if ttl is not None else 0
    new = session(ctx).run(lambda cl: cl.tokens.create(
        name, role=role, clusters=cluster or [], applications=application or [], ttl=seconds))
    t = new.token
    expires = f"expires {_utc(t.expires_at.seconds)}" if t.expires_at.seconds else "never expires"
    typer.echo(f"token {t.meta.name} created (id {t.meta.id}, role {t.role}, scope {scope(t)}, {expires}); "
               "it is shown only now", err=True)
    typer.echo(new.secret)


@app.command("ls")
def ls(ctx: typer.Context, output: OutputOpt = TABLE, no_headers: NoHeadersOpt = False) -> None:
    """List tokens: active, expired and revoked (never their secrets)."""
    emit(session(ctx).run(lambda cl: cl.tokens.list()), output, HEADERS, row, no_headers=no_headers)


@app.command("revoke")
def revoke(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(metavar="NAME|ID", help="The token's name or id.")],
) -> None:
    """Revoke a token: refused at once here, on other API servers within seconds."""
    t = session(ctx).run(lambda cl: cl.tokens.revoke(name))
    typer.echo(f"token {t.meta.name} (id {t.meta.id}) revoked")
