"""A watch-fed copy of every trigger's record and its secret, so a call reads no etcd to check.

Why: a trigger call used to read the record, the application and the secret's versions from
etcd before its delivery claim and its action (six round trips for a ``scale``); under 50
calls at once those reads queued behind each other on the server's one loop. The records and
secrets change only when an operator makes, rotates or removes a trigger, so they are listed
once and followed with a watch, as the informer (:mod:`controlplane.informer`) follows the
clusters' resources. Two prefixes, two watches (the informer's watch covers ``/ccs/c/`` only;
one watch over ``/ccs/`` would stream every container status write to this cache too).

**A stale copy never lets an old secret in.** The cache may lag a rotation or a removal
committed through another replica by the watch's delay. That is harmless because the caller
(:mod:`controlplane.triggers.invoke`) guards its delivery claim (create-only, in the same
transaction as the action's write: nothing lands without it) on the ``mod_revision`` of the
trigger record *and* of the secret version it checked the signature with: a rotation
rewrites the record, a removal deletes both, a removal followed by a new trigger of the same
name rewrites both. A claim made with a copy older than any of those fails in etcd (the
action's write with it), and the caller then reads both from etcd and checks the signature
again. So a call is accepted only if, at the claim's revision, the secret it was signed with
is the trigger's current one: exactly as strong as reading etcd first, and stronger than that
(a read-then-claim could interleave with a rotation).

While a watch is broken or re-listing, :meth:`TriggerCache.lookup` answers None and callers
read etcd.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from dataclasses import dataclass

import structlog

from ccs.v1 import triggers_pb2 as tpb
from controlplane.secrets.store import Version, parse_version, version_key
from controlplane.store import Compacted, keys
from controlplane.store.codec import decode
from controlplane.store.etcd import KV, Etcd, WatchedChange
from controlplane.triggers import records

log = structlog.get_logger("ccs.triggers")

PAGE = 1000


@dataclass(frozen=True)
class Cached:
    """A trigger's record (``meta.resource_version`` is its mod_revision) and the sealed secret
    version it names (``mod_revision`` set): what the claim is guarded on."""

    trigger: tpb.Trigger
    secret: Version


class _Followed:
    """One prefix, listed then watched; ``ready`` while the copy is complete and current."""

    def __init__(self, etcd: Etcd, prefix: str, apply: Callable[[KV, bool], None], clear: Callable[[], None]) -> None:
        self.etcd, self.prefix, self.apply, self.clear = etcd, prefix, apply, clear
        self.ready = False
        self.revision = 0

    async def relist(self) -> None:
        self.ready = False
        self.clear()
        revision, start = 0, None
        while True:
            res = await self.etcd.range(self.prefix, start=start, limit=PAGE, revision=revision)
            revision = revision or res.revision
            for kv in res.kvs:
                self.apply(kv, False)
            if not res.more or not res.kvs:
                break
            start = res.kvs[-1].key + "\0"
        self.revision = revision
        self.ready = True

    async def follow(self) -> None:
        backoff = 0.2
        while True:
            try:
                if not self.ready:
                    await self.relist()
                async for batch in self.etcd.watch(self.prefix, self.revision + 1):
                    self._apply(batch)
                    backoff = 0.2
            except asyncio.CancelledError:
                raise
            except Compacted:
                log.warning("trigger cache fell behind a compaction; re-listing", prefix=self.prefix)
                self.ready = False
            except Exception as e:  # etcd away: answer from etcd meanwhile, then list again
                log.warning("trigger cache watch broke; re-listing", prefix=self.prefix, error=str(e))
                self.ready = False
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, 5.0)

    def _apply(self, batch: list[WatchedChange]) -> None:
        for ch in batch:
            self.apply(ch.kv, ch.deleted)
        self.revision = batch[-1].revision


class TriggerCache:
    def __init__(self, etcd: Etcd) -> None:
        self.etcd = etcd
        self._triggers: dict[str, tpb.Trigger] = {}
        self._secrets: dict[str, Version] = {}
        self._parts = (
            _Followed(etcd, keys.TRIGGERS, self._apply_trigger, self._triggers.clear),
            _Followed(etcd, keys.SECRETS, self._apply_secret, self._secrets.clear),
        )
        self._tasks: list[asyncio.Task[None]] = []

    async def start(self) -> None:
        """List both prefixes now (a failure leaves the cache off: calls read etcd), then follow."""
        for part in self._parts:
            with contextlib.suppress(Exception):
                await part.relist()
        self._tasks = [asyncio.create_task(p.follow(), name=f"trigger-cache {p.prefix}") for p in self._parts]

    async def stop(self) -> None:
        for t in self._tasks:
            t.cancel()
        for t in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await t
        self._tasks = []

    @property
    def ready(self) -> bool:
        return all(p.ready for p in self._parts)

    def lookup(self, cluster: str, app: str, name: str) -> Cached | None:
        """The trigger and its current secret version as last seen; None when the cache cannot
        say (not listed yet, a watch broken, or either record missing: the caller reads etcd,
        which also tells a removed trigger from one this cache has not seen yet)."""
        if not self.ready:
            return None
        trigger = self._triggers.get(records.key(cluster, app, name))
        if trigger is None:
            return None
        secret = self._secrets.get(version_key(cluster, records.SECRET_KIND, records.secret_name(app, name),
                                               trigger.secret_version))
        if secret is None:
            return None
        return Cached(trigger, secret)

    def _apply_trigger(self, kv: KV, deleted: bool) -> None:
        if deleted:
            self._triggers.pop(kv.key, None)
            return
        try:
            self._triggers[kv.key] = decode(kv, tpb.Trigger)
        except Exception:  # a damaged record: not served from here (etcd's read says Corrupt)
            self._triggers.pop(kv.key, None)

    def _apply_secret(self, kv: KV, deleted: bool) -> None:
        # /ccs/secrets/{cluster}/{kind}/{name}/{version}: only the triggers' kind is kept.
        if kv.key[len(keys.SECRETS):].split("/")[1:2] != [records.SECRET_KIND]:
            return
        if deleted:
            self._secrets.pop(kv.key, None)
            return
        try:
            self._secrets[kv.key] = parse_version(kv)
        except Exception:
            self._secrets.pop(kv.key, None)
