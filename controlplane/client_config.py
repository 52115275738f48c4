"""What a server's start writes for its operators: the first admin token and a client context
that reaches this server (``ccs`` works at once on the same machine), kept in step with the
server's TLS on later starts, and the API's root CA as a public file.

Apart from :mod:`controlplane.server` because none of it is serving: it is the hand-over to the
people and tools on the host.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import TYPE_CHECKING

import structlog

from ccs.config import ConfigError, Context, load_config, save_config, upsert_context
from ccs.private_files import write_private

if TYPE_CHECKING:
    from controlplane.server import ServerOptions

log = structlog.get_logger("ccs.server")


def client_address(listen: str, port: int) -> str:
    host = listen.rsplit(":", 1)[0].strip("[]")
    if host in ("0.0.0.0", "::", ""):
        host = "127.0.0.1"
    return f"{host}:{port}"


def write_public(path: Path, data: bytes) -> None:
    """The API's root CA, for operators (``ccs login --ca-fingerprint``, curl --cacert)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_bytes(data)
    tmp.chmod(0o644)
    tmp.replace(path)


async def write_client_config(opts: ServerOptions, address: str, token: str, ca_pem: bytes | None) -> None:
    # The CA is pinned in the context itself, so the file works copied anywhere.
    ctx = Context(server=address, token=token, tls=ca_pem is not None,
                  ca_pem=ca_pem.decode() if ca_pem is not None else None)
    cfg_path = await asyncio.to_thread(upsert_context, opts.context_name, ctx, opts.client_config)
    token_file = opts.state_dir / "admin.token"
    token_file.parent.mkdir(parents=True, exist_ok=True)
    # Written whole or not at all (a temporary file renamed into place): a script that waits for
    # the file to appear must never read it empty (touch, then write, let one read "").
    await asyncio.to_thread(write_private, token_file, (token + "\n").encode())
    log.info(
        "first start: admin token created",
        client_config=str(opts.client_config or "default"),
        context=opts.context_name,
        token_file=str(token_file),
        contexts=list(cfg_path.contexts),
    )

async def refresh_client_config(opts: ServerOptions, address: str, ca_pem: bytes | None) -> None:
    """A later start keeps the context it wrote usable: when the context still names this
    server, its TLS settings follow the server's (an installation from before TLS had
    ``tls: false`` and no CA; a brought certificate changes the root). Nothing else in the
    file is touched, and a context that names another server is left alone."""

    def refresh() -> bool:
        try:
            cfg = load_config(opts.client_config)
        except ConfigError:
            return False
        ctx = cfg.contexts.get(opts.context_name)
        if ctx is None or ctx.server != address:
            return False
        pem = ca_pem.decode() if ca_pem is not None else None
        if ctx.tls == (pem is not None) and ctx.ca_pem == pem and not ctx.ca_file:
            return False
        cfg.contexts[opts.context_name] = ctx.model_copy(update={"tls": pem is not None, "ca_pem": pem,
                                                                  "ca_file": None})
        save_config(cfg, opts.client_config)
        return True

    if await asyncio.to_thread(refresh):
        log.info("client config: the context's TLS settings follow this server now",
                 context=opts.context_name, tls=ca_pem is not None)
