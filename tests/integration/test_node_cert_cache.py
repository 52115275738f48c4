"""The node certificate check is a cache kept by the informer's watch, not an etcd read per call.

With node certificates (the default) every heartbeat, status report and session recheck of
every node checked its certificate's record in etcd (issue 15: 1,200 reads a second at 2,000
nodes). Here the guard runs on a real etcd and informer with its clock stopped: repeated checks
cost one read, and a revocation or removal written by another client (another replica) is seen
by the next check once the informer's watch delivered it, with the clock not moving, so no
TTL can be what dropped the entry.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import AsyncIterator

import pytest

from controlplane.informer import Informer
from controlplane.pki import certs
from controlplane.pki.node_auth import NodeGuard
from controlplane.pki.node_certs import CertRecord
from controlplane.store import keys
from controlplane.store.etcd import Etcd
from controlplane.store.txn import Txn

pytestmark = pytest.mark.etcd

@pytest.fixture
async def informed(clients: tuple[Etcd, Etcd]) -> AsyncIterator[tuple[Etcd, Etcd, Informer]]:
    """The two etcd clients (``clients``), the first with an informer of its own."""
    mine, other = clients
    informer = Informer(mine)
    await informer.start()
    try:
        yield mine, other, informer
    finally:
        await informer.stop()


def cert(cluster: str, node: str, serial: str) -> certs.NodeCert:
    return certs.NodeCert(cluster, node, serial, dt.datetime.now(dt.UTC) + dt.timedelta(days=1))


async def test_checks_read_the_record_once_and_a_change_elsewhere_is_seen_at_the_next_check(
        informed: tuple[Etcd, Etcd, Informer]) -> None:
    mine, other, informer = informed
    cluster = f"c{uuid.uuid4().hex[:8]}"
    good, gone = cert(cluster, "n1", "aa01"), cert(cluster, "n2", "bb02")
    record = CertRecord(good.not_after.timestamp(), 1.0)
    await Txn().put(keys.node_cert(cluster, "n1", "aa01"), record.encode()).commit(other)
    written = await Txn().put(keys.node_cert(cluster, "n2", "bb02"), record.encode()).commit(other)
    guard = NodeGuard(mine, monotonic=lambda: 1000.0)  # stopped: nothing expires by time
    guard.follow(informer.follow_keys)
    # The informer has the writes before the first check: a change arriving after a check
    # drops its entry (as it must), and the count below would depend on when the watch came.
    assert await informer.caught_up(written, timeout=60)

    for _ in range(12):  # a minute of heartbeats of two nodes
        assert await guard._cert_status(good) == "ok"
        assert await guard._cert_status(gone) == "ok"
    assert guard.reads == 2

    # Another replica revokes n1's certificate and removes n2's record; once this server's
    # informer has both changes, the next check of each reads again and sees them, with the
    # clock not moving (no TTL dropped the entries), and keeps the new answers.
    await Txn().put(keys.node_cert(cluster, "n1", "aa01"),
                    CertRecord(record.not_after, 1.0, revoked_at=2.0).encode()).commit(other)
    changed = await Txn().delete(keys.node_cert(cluster, "n2", "bb02")).commit(other)
    assert await informer.caught_up(changed, timeout=60)
    assert (await guard._cert_status(good), await guard._cert_status(gone)) == ("revoked", "unknown")
    assert guard.reads == 4
    for _ in range(5):
        assert await guard._cert_status(good) == "revoked"
        assert await guard._cert_status(gone) == "unknown"
    assert guard.reads == 4  # the new answers are kept too


async def test_nothing_is_kept_until_the_guard_follows_the_records(
        informed: tuple[Etcd, Etcd, Informer]) -> None:
    mine, other, _ = informed
    cluster = f"c{uuid.uuid4().hex[:8]}"
    c = cert(cluster, "n1", "cc03")
    await Txn().put(keys.node_cert(cluster, "n1", "cc03"), CertRecord(c.not_after.timestamp(), 1.0).encode()).commit(other)
    guard = NodeGuard(mine, monotonic=lambda: 1000.0)
    for _ in range(3):
        assert await guard._cert_status(c) == "ok"
    assert guard.reads == 3
