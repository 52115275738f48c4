"""NodeLiveness without a real etcd: keys put once, heartbeats in memory, the sweep, the lease.

The clock is the test's; FakeEtcd (tests/unit/reconcile_helpers.py) holds the keys, with a lease
stub beside it. The real etcd, servers and agents: tests/integration/test_node_liveness.py.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import cast

import pytest

from controlplane.dispatcher.liveness import LivenessUnavailable, NodeLiveness
from controlplane.store import keys
from controlplane.store.etcd import Etcd
from controlplane.store.txn import Txn
from tests.unit.reconcile_helpers import C, FakeEtcd

DEADLINE = 11.0


@dataclass
class Refreshed:
    TTL: int


class Leases:
    """The part of aetcd's client NodeLiveness uses; ``expired`` makes the next keep-alive fail."""

    def __init__(self) -> None:
        self.expired = False
        self.refreshed = 0

    async def refresh_lease(self, lease: int) -> Refreshed:
        self.refreshed += 1
        return Refreshed(-1 if self.expired else 10)


class LeasedEtcd(FakeEtcd):
    def __init__(self) -> None:
        super().__init__()
        self.client = Leases()
        self.granted = 0

    async def grant_lease(self, ttl: int) -> int:
        self.granted += 1
        return self.granted


class Clock:
    def __init__(self) -> None:
        self.t = 100.0

    def __call__(self) -> float:
        return self.t


async def started() -> tuple[LeasedEtcd, Clock, NodeLiveness]:
    etcd, clock = LeasedEtcd(), Clock()
    live = NodeLiveness(cast(Etcd, etcd), "r1", DEADLINE, monotonic=clock)
    await live._grant()  # what start() does, without the background loop
    return etcd, clock, live


async def connect(etcd: LeasedEtcd, live: NodeLiveness, node: str) -> None:
    await live.vouch(Txn(), C, node).commit(cast(Etcd, etcd))
    live.vouched(C, node)


async def test_a_session_puts_one_key_and_heartbeats_write_nothing() -> None:
    etcd, clock, live = await started()
    await connect(etcd, live, "n1")
    assert list(etcd.values(keys.alive(C))) == [keys.alive(C, "n1", "r1")]
    revision = etcd.revision
    for _ in range(10):
        clock.t += 5.0
        await live._keep_alive()  # as the background loop does, every third of the TTL
        assert live.heard(C, "n1"), "the key is held: nothing to write"
        assert await live.sweep() == []
    assert etcd.revision == revision


async def test_a_node_unheard_past_the_deadline_loses_its_key_and_gets_it_back_when_heard() -> None:
    etcd, clock, live = await started()
    await connect(etcd, live, "n1")
    await connect(etcd, live, "n2")
    clock.t += DEADLINE  # exactly the deadline: still vouched for
    await live._keep_alive()
    live.heard(C, "n2")
    assert await live.sweep() == []
    clock.t += 0.5
    assert await live.sweep() == [(C, "n1")]
    assert list(etcd.values(keys.alive(C))) == [keys.alive(C, "n2", "r1")]
    assert not live.heard(C, "n1"), "not held any more: the dispatcher puts the key again"


async def test_without_a_live_lease_the_replica_vouches_for_no_one() -> None:
    etcd, clock, live = await started()
    await connect(etcd, live, "n1")
    clock.t += 9.5  # no keep-alive for longer than the TTL less the margin
    with pytest.raises(LivenessUnavailable):
        live.heard(C, "n1")
    with pytest.raises(LivenessUnavailable):
        live.vouch(Txn(), C, "n2")


async def test_a_lapsed_lease_is_replaced_and_the_nodes_heard_are_vouched_for_again() -> None:
    etcd, clock, live = await started()
    await connect(etcd, live, "n1")
    etcd.delete(keys.alive(C, "n1", "r1"))  # the lease expired in etcd: its keys went with it
    etcd.client.expired = True
    clock.t += 3.0
    await live._keep_alive()
    assert etcd.granted == 2
    assert list(etcd.values(keys.alive(C))) == [keys.alive(C, "n1", "r1")]
    assert live.heard(C, "n1")


async def test_a_stall_of_the_replicas_own_loop_is_not_taken_for_the_nodes_silence() -> None:
    """Issue 15: under deploy load the server's event loop stalled for seconds; the heartbeats of
    that time waited unread in its gRPC queue, and the sweep that ran first after the stall
    deleted the keys of nodes that were heartbeating all along (declared down, their containers
    placed again). The frozen clock makes the stall: the node was last heard at 100 (its next
    heartbeat is due at 105), the sweeps run on time until 104.5, then the loop stalls for 7.5 s
    and the sweep wakes before the queued heartbeat is read: 12 s after the node was heard."""
    etcd, clock, live = await started()
    await connect(etcd, live, "n1")
    for _ in range(10):  # 100 .. 104.5: on time
        assert await live.sweep() == []
        if clock.t == 103.5:
            await live._keep_alive()  # every third of the TTL
        clock.t += 0.5
    clock.t += 7.0  # the loop stalled: no sweep, no heartbeat read, until 112 (deadline 11 s)
    assert await live.sweep() == [], "the replica's own stall was counted against the node"
    assert list(etcd.values(keys.alive(C))) == [keys.alive(C, "n1", "r1")]
    assert live.heard(C, "n1"), "the queued heartbeat is read now: the key is still held"


async def test_a_node_silent_while_the_sweeps_run_on_time_is_still_declared_unheard() -> None:
    etcd, clock, live = await started()
    await connect(etcd, live, "n1")
    swept: list[tuple[str, str]] = []
    for _ in range(int(DEADLINE / 0.5) + 2):  # the sweep's own cadence: no stall to forgive
        await live._keep_alive()
        swept += await live.sweep()
        clock.t += 0.5
    assert swept == [(C, "n1")]


async def test_a_refresh_counts_from_when_it_was_sent_and_only_for_the_current_lease() -> None:
    """The keeper's thread reports refreshes of the lease it read; one of a lease since replaced,
    or one older than what is known, changes nothing (lease_keeper's docstring)."""
    _, clock, live = await started()
    granted_at = clock.t
    clock.t += 8.0
    live._kept(live._lease, granted_at - 1.0)  # older than the grant: no news
    live._kept(live._lease + 99, clock.t)  # another lease's refresh
    clock.t += 1.5
    assert not live.usable()  # 9.5 s since the grant: past the TTL less the margin
    live._kept(live._lease, clock.t - 0.5)  # sent half a second ago, confirmed now
    assert live.usable()
