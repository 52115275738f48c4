"""Housekeeping that any API server may run: it is idempotent, so replicas need no leader.

Events are pruned after an hour, audit records after ``--audit-retention`` (30 days by default).
"""

from __future__ import annotations

import asyncio
import datetime as dt
import time

import structlog

from controlplane.pki import node_certs
from controlplane.store import keys
from controlplane.store.etcd import Etcd
from controlplane.store.txn import Txn

log = structlog.get_logger("ccs.janitor")

EVENT_RETENTION_SECONDS = 3600
AUDIT_RETENTION_SECONDS = 30 * 86400


async def prune_events(etcd: Etcd, retention: float = EVENT_RETENTION_SECONDS) -> None:
    """Delete events older than ``retention`` in every cluster.

    Event keys start with a zero-padded nanosecond timestamp, so "older than" is one
    key range per cluster and nothing has to be read. All clusters go in one transaction.
    """
    cutoff = f"{int((time.time() - retention) * 1e9):020d}"
    res = await etcd.range(keys.CLUSTERS, keys_only=True)
    txn = Txn()
    for kv in res.kvs:
        prefix = keys.events(kv.key[len(keys.CLUSTERS) :])
        txn.delete_range(prefix, prefix + cutoff)
    if len(txn):
        await txn.commit(etcd)


async def prune_audit(etcd: Etcd, retention: float = AUDIT_RETENTION_SECONDS) -> None:
    """Delete audit records older than ``retention`` (``--audit-retention``): like events,
    their keys start with the time, so this is one range delete."""
    cutoff = f"{int((time.time() - retention) * 1e9):020d}"
    await Txn().delete_range(keys.AUDIT, keys.audit(cutoff)).commit(etcd)


async def prune_events_forever(
    etcd: Etcd, period: float = 60.0, audit_retention: float = AUDIT_RETENTION_SECONDS
) -> None:
    """Events and audit records every ``period``; the records of expired node certificates with
    them (a certificate past its expiry is refused by the handshake and by the per-call check
    anyway, so its record, revoked or not, only takes room)."""
    while True:
        try:
            await prune_events(etcd)
            await prune_audit(etcd, audit_retention)
            await node_certs.prune_expired(etcd, dt.datetime.now(dt.UTC))
        except Exception as e:  # a passing etcd outage must not kill housekeeping
            log.warning("event pruning failed; will retry", error=str(e))
        await asyncio.sleep(period)
