"""``ccs context ls|use|rename|rm``: the named connections of the client config (``ccs.config``).

Contexts are written by a server's first start and by ``ccs login``; these commands list, choose,
rename and remove them. A listing never shows a context's token or client key (not even with
``-o json``): only whether it has one.
"""

from __future__ import annotations

from typing import Annotated, Any

import typer

from ccs.config import ConfigError, ContextExists, ContextNotFound, load_config, remove_context, rename_context
from ccs.config import use_context as use_config_context
from cli.output import TABLE, NoHeadersOpt, OutputOpt, render_plain, table
from cli.session import fail, session

app = typer.Typer(help="List, choose, rename and remove client contexts.", no_args_is_help=True)

HEADERS = ("CURRENT", "NAME", "SERVER", "CLUSTER", "TLS", "CA", "TOKEN")
NameArg = Annotated[str, typer.Argument(help="Context name.")]


def _config_call(call: Any) -> Any:
    """Config errors as exit codes: not found 3, exists 5, anything else 1."""
    try:
        return call()
    except ContextNotFound as exc:
        fail(str(exc), 3)
    except ContextExists as exc:
        fail(str(exc), 5)
    except ConfigError as exc:
        fail(str(exc))


def described(name: str, current: str | None, ctx: Any) -> dict[str, Any]:
    """What ``ls`` shows of a context: never its token or key."""
    ca = "pinned" if ctx.ca_pem else (ctx.ca_file or "system roots")
    return {"name": name, "current": name == current, "server": ctx.server, "cluster": ctx.cluster or "",
            "tls": ctx.tls, "ca": ca if ctx.tls else "-", "token": "set" if ctx.token else "none",
            "client_certificate": bool(ctx.client_cert)}


@app.command("ls")
def ls(ctx: typer.Context, output: OutputOpt = TABLE, no_headers: NoHeadersOpt = False) -> None:
    """List contexts; the current one is marked with '*'."""
    path = session(ctx).config
    cfg = _config_call(lambda: load_config(path))
    items = [described(n, cfg.current_context, c) for n, c in cfg.contexts.items()]
    if render_plain(items, output, "context"):
        return
    table(HEADERS, ([("*" if d["current"] else ""), d["name"], d["server"], d["cluster"] or "-",
                     "yes" if d["tls"] else "no", d["ca"], d["token"]] for d in items), no_headers=no_headers)


@app.command("use")
def use(ctx: typer.Context, name: NameArg) -> None:
    """Make NAME the current context."""
    path = session(ctx).config
    _config_call(lambda: use_config_context(name, path))
    typer.echo(f"current context: {name}")


@app.command("rename")
def rename(
    ctx: typer.Context, old: NameArg, new: Annotated[str, typer.Argument(help="The new name.")]
) -> None:
    """Rename a context (the current context follows the rename)."""
    path = session(ctx).config
    _config_call(lambda: rename_context(old, new, path))
    typer.echo(f"context {old} renamed to {new}")


@app.command("rm")
def rm(ctx: typer.Context, name: NameArg) -> None:
    """Remove a context (its token is forgotten with it); removing the current one leaves none current."""
    path = session(ctx).config
    cfg = _config_call(lambda: load_config(path))
    was_current = cfg.current_context == name
    _config_call(lambda: remove_context(name, path))
    note = "; no context is current now ('ccs context use NAME')" if was_current else ""
    typer.echo(f"context {name} removed{note}")
