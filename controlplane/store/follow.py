"""Follow one key prefix for a cache: read the revision, watch from the next one, start again on a break.

Why a function of its own: the server's small caches (token records in
:class:`controlplane.auth.TokenVerifier`, registry logins in
:class:`controlplane.registry.login_cache.LoginCache`) all need the same loop, and a second
hand-written copy is where a cache learns to trust itself while its watch is down. The loop
tells the cache three things, in order, every time round: ``on_start(revision)`` once the watch
is about to start at ``revision + 1`` (the cache drops what it held: it may have missed
changes), each batch of changes (one etcd revision), and ``on_break()`` when the watch ends
(etcd down, compacted, cancelled): until the next ``on_start`` the cache must not answer from
what it holds. The informer keeps its own loop: it lists and applies whole records, this only
tells a cache what changed.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import structlog

from .etcd import Etcd, WatchedChange

log = structlog.get_logger("ccs.store")


async def follow_prefix(
    etcd: Etcd, prefix: str, *, on_start: Callable[[int], None], on_batch: Callable[[list[WatchedChange]], None],
    on_break: Callable[[], None] = lambda: None, retry: float = 1.0,
) -> None:
    """Run until cancelled (see the module docstring for what each callback means)."""
    while True:
        try:
            _, revision = await etcd.get_with_revision(prefix)
            on_start(revision)
            async for batch in etcd.watch(prefix, revision + 1):
                on_batch(batch)
        except asyncio.CancelledError:
            on_break()
            raise
        except Exception as e:  # etcd down or compacted: start again from now
            log.debug("watch restarting", prefix=prefix, error=str(e))
        on_break()
        await asyncio.sleep(retry)
