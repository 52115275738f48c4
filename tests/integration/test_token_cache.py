"""The token cache: heartbeats do not read etcd each time, and a revocation still takes at once.

A node agent under ``--insecure`` presents its bearer credential on every heartbeat (every 5 s
by default), and the cache kept an entry ``CACHE_TTL`` = 5 s: every heartbeat read its token from
etcd. Now an entry lives long while the watch on token records runs, and the watch drops it when
the record changes. The verifier runs here on a real etcd with its clock stopped between steps
(moved by hand, a heartbeat period at a time); ``reads`` counts its etcd reads. A revocation
written by another client (another replica) must then refuse the next call once the watch has
seen it, with the clock not moving at all, so no TTL can be what dropped the entry.
"""

from __future__ import annotations

import asyncio
import dataclasses
import uuid
from collections.abc import Awaitable, Callable

import pytest

from controlplane.auth import CACHE_TTL, Principal, TokenVerifier, digest, new_token, token_record
from controlplane.store import keys
from controlplane.store.etcd import Etcd
from controlplane.store.txn import Txn

pytestmark = pytest.mark.etcd

WAIT = 30.0


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


async def until(what: str, check: Callable[[], Awaitable[bool]]) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + WAIT
    while not await check():
        assert loop.time() < deadline, f"timed out waiting for {what}"
        await asyncio.sleep(0.02)


async def test_heartbeats_read_their_token_once_and_a_revocation_elsewhere_refuses_the_next_call(
        clients: tuple[Etcd, Etcd]) -> None:
    mine, other = clients
    node = f"n-{uuid.uuid4().hex[:8]}"
    credential = new_token("ccsnode")
    record = Principal(node, "node", "c1", node)
    await Txn().put(keys.token(digest(credential)), token_record(record)).commit(other)
    clock = Clock()
    verifier = TokenVerifier(mine, clock=clock)
    follow = asyncio.create_task(verifier.follow_changes(retry=0.1))
    try:
        await until("the watch on token records", lambda: asyncio.sleep(0, verifier.following))
        for _ in range(12):  # a minute of heartbeats, one each period of CACHE_TTL (as the default)
            p = await verifier.verify(credential)
            assert p is not None and p.name == node and not p.revoked_at
            clock.now += CACHE_TTL
        assert verifier.reads == 1, f"{verifier.reads} etcd reads for 12 heartbeats"

        # Revoked by another replica: the clock stands still, only the watch can drop the entry.
        revoked = dataclasses.replace(record, revoked_at=clock.now)
        await Txn().put(keys.token(digest(credential)), token_record(revoked)).commit(other)

        async def refused() -> bool:
            p = await verifier.verify(credential)
            return p is not None and p.revoked_at > 0

        await until("the revocation seen", refused)
        assert verifier.reads == 2
    finally:
        follow.cancel()
        await asyncio.gather(follow, return_exceptions=True)


async def test_while_the_watch_is_down_entries_live_only_the_short_ttl(clients: tuple[Etcd, Etcd]) -> None:
    """No watch (not started, or broken): a revocation elsewhere is seen within CACHE_TTL."""
    mine, other = clients
    credential = new_token("ccsnode")
    await Txn().put(keys.token(digest(credential)), token_record(Principal("n", "node", "c1", "n"))).commit(other)
    clock = Clock()
    verifier = TokenVerifier(mine, clock=clock)
    assert (await verifier.verify(credential)) is not None
    await Txn().delete(keys.token(digest(credential))).commit(other)
    clock.now += CACHE_TTL - 0.1
    assert (await verifier.verify(credential)) is not None  # within the short TTL: the cached record
    clock.now += 0.2
    assert (await verifier.verify(credential)) is None
    assert verifier.reads == 2
