"""``ccs login SERVER --token T --ca-fingerprint SHA256``: a context for a control plane elsewhere.

The first start of a server writes a context on its own host, with the CA pinned. Another
machine knows the server's address, a token and the CA's fingerprint (the server logs it at
every start, it is in every join token, and ``STATE/ca.crt`` holds the CA), and gets the CA
itself from the server: one TLS handshake without verification fetches the chain
(``ccs.tls``), the certificate with that fingerprint is kept, the token is checked with one call
over a channel verified against it, and only then is the context written. On a mismatch
nothing is written and the token is never sent.
"""

from __future__ import annotations

import asyncio
import ssl
from typing import Annotated

import typer

from ccs import errors
from ccs.client import AsyncClient
from ccs.config import Context, default_config_path, upsert_context
from ccs.tls import FingerprintMismatch, fetch_chain, normalize_fingerprint, split_address
from cli.session import exit_code, fail, session

EXIT_UNAUTHENTICATED = 6
EXIT_UNAVAILABLE = 7


def login(
    ctx: typer.Context,
    server: Annotated[str, typer.Argument(help="host:port of a ccs API server.")],
    token: Annotated[str, typer.Option("--token", help="A token of that control plane.")],
    ca_fingerprint: Annotated[
        str,
        typer.Option("--ca-fingerprint",
                     help="SHA-256 of the control plane's CA (64 hex digits, colons allowed): in the "
                     "server's log, in every join token, or `openssl x509 -fingerprint -sha256 -in STATE/ca.crt`."),
    ],
    name: Annotated[str | None, typer.Option("--name", help="Context name (default: the server's host).")] = None,
    cluster: Annotated[str | None, typer.Option("--cluster", help="Default cluster of the context.")] = None,
) -> None:
    """Pin a control plane's CA by its fingerprint, check the token, and write a context."""
    try:
        fingerprint = normalize_fingerprint(ca_fingerprint)
        host, _ = split_address(server)
    except ValueError as exc:
        raise typer.BadParameter(str(exc)) from None
    try:
        chain = fetch_chain(server)
    except (OSError, ssl.SSLError) as exc:
        fail(f"cannot reach {server} over TLS: {exc}", EXIT_UNAVAILABLE)
    try:
        ca_pem = chain.ca_pem(fingerprint)
    except FingerprintMismatch as exc:
        fail(str(exc), EXIT_UNAUTHENTICATED)

    async def check() -> None:
        async with AsyncClient(server, token, ca_pem=ca_pem, timeout=15) as client:
            await client.clusters.list(page_size=1)

    try:
        asyncio.run(check())
    except errors.Unauthenticated as exc:
        fail(f"the server refused the token: {exc.message}", exit_code(exc))
    except errors.Unavailable as exc:
        fail(f"cannot use {server} with the pinned CA: {exc.message} (if the certificate does not "
             f"name {host!r}, start the server with --advertise {host})", exit_code(exc))
    except errors.CcsError as exc:
        fail(exc.message, exit_code(exc))
    s = session(ctx)
    context_name = name or host
    upsert_context(context_name, Context(server=server, token=token, tls=True, ca_pem=ca_pem, cluster=cluster),
                   s.config)
    where = s.config or default_config_path()
    typer.echo(f"context {context_name!r} written to {where} (current); CA {fingerprint} pinned")
