"""What every command shares: resolving the connection, running SDK calls, and the one
mapping from errors to exit codes (documented in ``cli/__init__.py``)."""

from __future__ import annotations

import asyncio
import os
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, NoReturn, TypeVar

import typer
from typer.exceptions import TyperException

from ccs import errors
from ccs.client import AsyncClient
from ccs.config import ConfigError, Context, default_config_path, load_config
from ccs.template import TemplateError
from ccs.tls import verification_hint
from cli.build_plan import BuildError, BuildFailed

T = TypeVar("T")

EXIT_OTHER = 1
EXIT_DIFFERENT = 12  # `ccs app diff`: the update would change something (1 is taken: any other error)
EXIT_INTERRUPTED = 130
_EXIT_CODES: tuple[tuple[type[Exception], int], ...] = (
    (errors.NotFound, 3),
    (errors.InvalidArgument, 4),
    (TemplateError, 4),
    (BuildError, 4),
    (errors.AlreadyExists, 5),
    (errors.Conflict, 5),
    (errors.FailedPrecondition, 5),
    (errors.Unauthenticated, 6),
    (errors.PermissionDenied, 6),
    (errors.Unavailable, 7),
    (errors.DeployFailed, 8),
    (errors.WaitTimeout, 9),
    (errors.ReleaseFailed, 10),
    (errors.DataLoss, 11),
    (BuildFailed, 13),
    (errors.RateLimited, 14),
)

ClusterOpt = Annotated[
    str | None,
    typer.Option(
        "-c", "--cluster", envvar="CCS_CLUSTER", show_envvar=False,
        help="Cluster (default: CCS_CLUSTER, then the context's cluster).",
    ),
]


def exit_code(exc: BaseException) -> int:
    """The exit code for an error; 1 for anything not in the table."""
    for cls, code in _EXIT_CODES:
        if isinstance(exc, cls):
            return code
    return EXIT_OTHER


def fail(message: str, code: int = EXIT_OTHER) -> NoReturn:
    """Print ``error: <message>`` as one line on stderr and exit with ``code``."""
    one_line = "; ".join(part.strip() for part in str(message).splitlines() if part.strip())
    typer.echo(f"error: {one_line}", err=True)
    raise typer.Exit(code)


def parse_pairs(values: Iterable[str], option: str, *, allow_empty: bool = True) -> dict[str, str]:
    """``["k=v", ...]`` -> dict; a malformed item is a usage error naming the option."""
    out: dict[str, str] = {}
    for item in values:
        key, sep, value = item.partition("=")
        if not sep or not key or (not value and not allow_empty):
            raise typer.BadParameter(f"{item!r}: expected KEY=VALUE", param_hint=option)
        out[key] = value
    return out


def split_service(ref: str) -> tuple[str, str]:
    """``APP/SERVICE`` -> ``(app, service)``; anything else is a usage error."""
    app, sep, service = ref.partition("/")
    if not sep or not app or not service or "/" in service:
        raise typer.BadParameter(f"{ref!r}: expected APP/SERVICE", param_hint="APP/SERVICE")
    return app, service


@dataclass
class Session:
    """The global options, resolved lazily: commands that fail on usage never read config."""

    context: str | None = None
    config: Path | None = None
    server: str | None = None
    token: str | None = None
    ca_file: Path | None = None
    insecure: bool = False

    def _context(self) -> Context | None:
        cfg = load_config(self.config)
        if self.context is None and cfg.current_context is None:
            return None
        return cfg.context(self.context)[1]

    def connection(self) -> Context:
        """Flags and environment over the selected context."""
        ctx = self._context()
        server = self.server or (ctx.server if ctx else None)
        if not server:
            where = self.config or default_config_path()
            raise ConfigError(
                f"no server configured: pass --server (or CCS_SERVER), or add a context to {where}"
            )
        # --server to another address keeps the context's CA: another replica of the same
        # control plane chains to it, and any other server fails verification (never trusted).
        ca_file = str(self.ca_file) if self.ca_file else (ctx.ca_file if ctx else None)
        return Context(
            server=server,
            token=self.token or (ctx.token if ctx else None),
            tls=False if self.insecure else (ctx.tls if ctx else True),
            ca_file=None if self.insecure else ca_file,
            ca_pem=None if self.insecure or self.ca_file or ctx is None else ctx.ca_pem,
            client_cert=None if self.insecure or ctx is None else ctx.client_cert,
            client_key=None if self.insecure or ctx is None else ctx.client_key,
            cluster=ctx.cluster if ctx else None,
        )

    def cluster(self, flag: str | None) -> str:
        """The -c flag, else the context's cluster, else a usage error."""
        found = self.cluster_or_none(flag)
        if found:
            return found
        raise typer.BadParameter(
            "required: the context sets no default cluster", param_hint="'-c' / '--cluster'"
        )

    def cluster_or_none(self, flag: str | None) -> str:
        """The -c flag, else the context's cluster, else "" (for a command where none is a
        valid answer: ``ccs whoami``)."""
        if flag:
            return flag
        try:
            ctx = self._context()
        except ConfigError as exc:
            fail(str(exc))
        return ctx.cluster if ctx is not None and ctx.cluster else ""

    def run(self, fn: Callable[[AsyncClient], Awaitable[T]]) -> T:
        """Run ``fn`` with a connected client; SDK, config and template errors become one
        line on stderr and the exit code from the table (``CCS_DEBUG=1`` shows tracebacks)."""

        try:
            conn = self.connection()

            async def main() -> T:
                async with AsyncClient(
                    conn.server, conn.token, tls=conn.tls, ca_file=conn.ca_file, ca_pem=conn.ca_pem,
                    client_cert=conn.client_cert, client_key=conn.client_key,
                ) as client:
                    return await fn(client)

            try:
                return asyncio.run(main())
            except errors.EtcdUnavailable as exc:  # the server is up; its state store is not
                fail(f"{exc.message} (server {conn.server} is up; retry when etcd is back)",
                     exit_code(exc))
            except errors.Unavailable as exc:
                hint = verification_hint(exc.message, conn.server)
                fail(f"cannot reach {conn.server}: {exc.message}" + (f" ({hint})" if hint else ""),
                     exit_code(exc))
        except (typer.Exit, TyperException):
            raise
        except KeyboardInterrupt:
            raise typer.Exit(EXIT_INTERRUPTED) from None
        except Exception as exc:
            if os.environ.get("CCS_DEBUG"):
                raise
            fail(str(exc) or type(exc).__name__, exit_code(exc))


def session(ctx: typer.Context) -> Session:
    """The session the root callback stored on the click context."""
    obj = ctx.find_root().obj
    if not isinstance(obj, Session):
        obj = Session()
        ctx.find_root().obj = obj
    return obj
