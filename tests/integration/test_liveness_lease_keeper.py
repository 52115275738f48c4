"""The liveness lease outlives a busy event loop, and not a wedged one (real etcd).

The loop is held with a plain ``time.sleep`` inside a coroutine: nothing on it runs meanwhile,
exactly as under a long synchronous burst of work. The lease's TTL is 4 s, so a hold of 10 s is
well past it; etcd deletes a lapsed lease's keys itself, so the key's presence afterwards says
whether the lease was kept alive during the hold. The liveness is stopped (its loop tasks
cancelled, which happens before the loop runs anything else) before the key is read, so the
loop's own keep-alive cannot put a lapsed key back first.
"""

from __future__ import annotations

import time

import pytest

from controlplane.dispatcher.liveness import NodeLiveness
from controlplane.store import keys
from controlplane.store.etcd import Etcd
from controlplane.store.txn import Txn
from tests.conftest import EtcdProc

pytestmark = pytest.mark.etcd

TTL = 4


async def vouching(etcd: Etcd, replica: str, node: str) -> NodeLiveness:
    liveness = NodeLiveness(etcd, replica, deadline=600.0, ttl=TTL, blocking_channel=etcd.blocking_channel)
    await liveness.start()
    await liveness.vouch(Txn(), "c", node).commit(etcd)
    liveness.vouched("c", node)
    return liveness


async def test_a_loop_held_past_the_ttl_keeps_its_lease_and_keys(etcd: EtcdProc, unique: str) -> None:
    client = Etcd([etcd.url])
    liveness = await vouching(client, unique, "n1")
    try:
        time.sleep(2.5 * TTL)  # hold the loop: only the keeper's thread can refresh
        assert liveness.usable()
        await liveness.stop()
        assert liveness.keeper is not None and liveness.keeper.refreshed >= 3
        assert await client.get(keys.alive("c", "n1", unique)) is not None
    finally:
        await liveness.stop()
        await client.close()


async def test_a_loop_wedged_past_the_limit_lets_the_lease_lapse(etcd: EtcdProc, unique: str) -> None:
    client = Etcd([etcd.url])
    liveness = await vouching(client, unique, "n1")
    assert liveness.keeper is not None
    liveness.keeper.stall_limit = 0.5  # the loop counts as wedged half a second after its last sweep
    try:
        time.sleep(2.5 * TTL)
        assert not liveness.usable()
        await liveness.stop()
        assert liveness.keeper.withheld >= 1
        assert await client.get(keys.alive("c", "n1", unique)) is None  # etcd dropped it with the lease
    finally:
        await liveness.stop()
        await client.close()
