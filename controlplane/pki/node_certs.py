"""Which node certificates are good: the issued-certificate list in etcd, checked on every call.

grpc-python cannot re-validate an established TLS connection, and a connection outlives any
revocation, so the TLS handshake only proves the CA signed the certificate. Every node call
then looks up ``/ccs/c/{cluster}/nodecerts/{node}/{serial}`` (read from etcd once, then kept
by :class:`controlplane.pki.node_auth.NodeGuard` until the informer's watch sees the record change):

- present and not revoked: the call goes on as that node;
- present with ``revoked_at``: refused as revoked (the agent stops and says so instead of
  registering again: ``ccs node revoke`` and ``ccs node rm`` mean "keep this node out");
- absent: refused as unknown (a certificate of a cluster that was deleted, or issued after the
  etcd backup being run): the agent registers again if it has a join token.

A certificate is recorded in the transaction that issues it, revoked in the transaction that
removes or revokes its node, and its record is pruned by the janitor once it has expired (an
expired certificate is refused by the TLS handshake and by the per-call check anyway).
"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass

from controlplane.store import keys
from controlplane.store.etcd import Etcd
from controlplane.store.txn import Txn


@dataclass(frozen=True, slots=True)
class CertRecord:
    not_after: float
    issued_at: float
    revoked_at: float = 0.0

    def encode(self) -> bytes:
        return json.dumps({"not_after": self.not_after, "issued_at": self.issued_at,
                           "revoked_at": self.revoked_at}).encode()

    @staticmethod
    def decode(raw: bytes) -> CertRecord:
        try:
            d = json.loads(raw)
            return CertRecord(float(d["not_after"]), float(d.get("issued_at", 0)),
                              float(d.get("revoked_at", 0)))
        except (ValueError, KeyError, TypeError):
            # A damaged record must not let a certificate through: treat it as revoked.
            return CertRecord(0.0, 0.0, revoked_at=1.0)


def record_issued(txn: Txn, cluster: str, node: str, serial: str, not_after: dt.datetime,
                  now: dt.datetime) -> None:
    txn.put(keys.node_cert(cluster, node, serial),
            CertRecord(not_after.timestamp(), now.timestamp()).encode())


async def revoke_all(etcd: Etcd, txn: Txn, cluster: str, node: str, now: dt.datetime,
                     keep: str = "") -> int:
    """Add to ``txn`` the revocation of every certificate of ``node`` not revoked yet (but
    ``keep``); returns how many."""
    res = await etcd.range(keys.node_certs(cluster, node))
    count = 0
    for kv in res.kvs:
        serial = kv.key.rsplit("/", 1)[-1]
        rec = CertRecord.decode(kv.value)
        if serial == keep or rec.revoked_at:
            continue
        txn.put(kv.key, CertRecord(rec.not_after, rec.issued_at, now.timestamp()).encode())
        count += 1
    return count


async def status(etcd: Etcd, cluster: str, node: str, serial: str) -> str:
    """``"ok"``, ``"revoked"`` or ``"unknown"`` for one certificate."""
    kv = await etcd.get(keys.node_cert(cluster, node, serial))
    if kv is None:
        return "unknown"
    return "revoked" if CertRecord.decode(kv.value).revoked_at else "ok"


async def prune_expired(etcd: Etcd, now: dt.datetime) -> int:
    """Delete the records of certificates past their expiry in every cluster."""
    clusters = await etcd.range(keys.CLUSTERS, keys_only=True)
    txn, count = Txn(), 0
    for ckv in clusters.kvs:
        cluster = ckv.key[len(keys.CLUSTERS):]
        res = await etcd.range(keys.node_certs(cluster))
        for kv in res.kvs:
            if CertRecord.decode(kv.value).not_after < now.timestamp():
                txn.delete(kv.key)
                count += 1
                if len(txn) >= 100:
                    await txn.commit(etcd)
                    txn = Txn()
    if len(txn):
        await txn.commit(etcd)
    return count
