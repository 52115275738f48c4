"""Trigger records, their secrets and their delivery claims in etcd (layout: the package doc)."""

from __future__ import annotations

import hashlib
import secrets as random_secrets
import time

from ccs.v1 import triggers_pb2 as tpb
from controlplane.secrets.store import SecretStore, Version
from controlplane.store import AlreadyExists, Conflict, NotFound, keys, reads
from controlplane.store.etcd import Etcd
from controlplane.store.txn import Txn

TRIGGERS = keys.TRIGGERS
DELIVERIES = keys.TRIGGER_DELIVERIES
SECRET_KIND = keys.TRIGGER_SECRET_KIND
#: How long a delivery id is remembered. GitHub redelivers with the same id (by hand, at any
#: time): a week covers its redelivery window of recent deliveries; a ccs-signed call is refused
#: by its timestamp after 5 minutes anyway, so its ids need 10 (a minute's margin).
GITHUB_TTL = 7 * 24 * 3600
CCS_TTL = 11 * 60
#: A lease is shared by the claims of this many seconds (one grant, not one per call).
LEASE_REUSE = 60


def prefix(cluster: str, app: str = "") -> str:
    return keys.triggers(cluster, app or None)


def key(cluster: str, app: str, name: str) -> str:
    return f"{prefix(cluster, app)}{name}"


def secret_name(app: str, name: str) -> str:
    """The trigger's name in the secrets store (kind ``trigger``): ``app.name``; a DNS label
    holds no dot, so two triggers never share one."""
    return f"{app}.{name}"


def delivery_key(cluster: str, app: str, name: str, delivery: str) -> str:
    """The claim of one delivery id (hashed: the id is the caller's text, the key is ours)."""
    return f"{keys.trigger_deliveries(cluster, app)}{name}/{hashlib.sha256(delivery.encode()).hexdigest()[:40]}"


def new_secret() -> str:
    """32 random bytes, URL-safe text (what ``ccs trigger create`` prints once)."""
    return random_secrets.token_urlsafe(32)


class Replay(Exception):
    """The delivery id was seen before (on any replica, before any restart)."""


class Stale(Exception):
    """The trigger's record or secret changed since the copy a call was checked with."""


#: The kind a claim's guards on the record and the secret report (told apart from a delivery's).
STALE = "trigger (as checked)"


def refusal(error: Exception, trigger: tpb.Trigger, delivery: str) -> Exception:
    """What a failed guard of a claim means: :class:`Replay` (the delivery key exists),
    :class:`Stale` (the record or the secret changed), else ``error`` itself."""
    kind = getattr(error, "kind", "")
    if isinstance(error, AlreadyExists) and kind == "delivery":
        return Replay(delivery)
    if isinstance(error, Conflict | NotFound) and kind == STALE:
        return Stale(f"{trigger.application}/{trigger.meta.name}")
    return error


class TriggerStore:
    def __init__(self, etcd: Etcd, secrets: SecretStore) -> None:
        self.etcd, self.secrets = etcd, secrets
        self._leases: dict[int, tuple[int, float]] = {}

    async def get(self, cluster: str, app: str, name: str) -> tpb.Trigger:
        """The record (its mod_revision in meta.resource_version); NotFound naming ``app/name``."""
        return await reads.get(self.etcd, key(cluster, app, name), tpb.Trigger, "trigger", f"{app}/{name}")

    async def list(self, cluster: str, app: str = "") -> list[tpb.Trigger]:
        res = await self.etcd.range(prefix(cluster, app))
        return reads.decode_all(res.kvs, tpb.Trigger, "triggers")

    async def secret(self, trigger: tpb.Trigger) -> bytes:
        v = await self.secrets.get(trigger.cluster, SECRET_KIND, secret_name(trigger.application, trigger.meta.name),
                                   None)
        return await self.secrets.value(v)

    async def read(self, cluster: str, app: str, name: str) -> tuple[tpb.Trigger, Version]:
        """The record and its current secret version, from etcd (NotFound naming ``app/name``)."""
        for _ in range(3):
            trigger = await self.get(cluster, app, name)
            try:
                return trigger, await self.secrets.get(cluster, SECRET_KIND, secret_name(app, name),
                                                       trigger.secret_version)
            except NotFound:  # rotated (or removed) between the two reads: read both again
                continue
        raise Stale(f"{app}/{name}")

    async def claim_txn(self, trigger: tpb.Trigger, secret: Version, delivery: str, ttl: int) -> tuple[Txn, str]:
        """The claim of ``delivery`` for ``ttl`` seconds, as a transaction not yet committed (it
        rides on the action's own: :mod:`controlplane.triggers.invoke`), and the claim's key.

        Create-only: of two replicas claiming the same id, one wins (the other's transaction
        fails on the delivery key, :class:`Replay` through :func:`refusal`). Guarded on the
        record and the secret version the signature was checked with being unchanged (their
        ``mod_revision``): :class:`Stale` when a rotation or a removal landed since they were
        read (or cached), so no call signed with a replaced secret is claimed after the
        replacement commits (:mod:`controlplane.triggers.cache`)."""
        cluster, app, name = trigger.cluster, trigger.application, trigger.meta.name
        k = delivery_key(cluster, app, name, delivery)
        lease = await self._lease(ttl)
        txn = Txn().require_revision(key(cluster, app, name), STALE, f"{app}/{name}", trigger.meta.resource_version)
        txn.require_revision(secret.key, STALE, f"{app}/{name}@{secret.version}", secret.mod_revision)
        txn.require_absent(k, "delivery", delivery).put(k, b"1", lease=lease)
        return txn, k

    async def claim(self, trigger: tpb.Trigger, secret: Version, delivery: str, ttl: int,
                    also: tuple[str, bytes] | None = None) -> str:
        """Commit the claim (with the key ``also``, if given: the call's audit record) on its own,
        for a call whose action wrote nothing; :class:`Replay` or :class:`Stale` if refused."""
        txn, k = await self.claim_txn(trigger, secret, delivery, ttl)
        if also is not None:
            txn.put(*also)
        try:
            await txn.commit(self.etcd)
        except (AlreadyExists, Conflict, NotFound) as e:
            raise refusal(e, trigger, delivery) from None
        return k

    async def release_claim(self, claim: str) -> None:
        await Txn().delete(claim).commit(self.etcd)

    async def _lease(self, ttl: int) -> int:
        now = time.monotonic()
        held = self._leases.get(ttl)
        if held is not None and now - held[1] < LEASE_REUSE:
            return held[0]
        lease = await self.etcd.grant_lease(ttl + LEASE_REUSE)
        self._leases[ttl] = (lease, now)
        return lease
