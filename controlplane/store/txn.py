"""A transaction builder: several keys, one etcd transaction, all or nothing.

Each operation states its precondition (the key must be absent, must exist, must be at
a given mod_revision). On failure the transaction's failure branch reads back every
guarded key, so the caller learns *which* precondition failed and gets the right error
(:class:`NotFound`, :class:`AlreadyExists` or :class:`Conflict`) without a second,
racy read.

A **rider** (:data:`RIDER`, a context variable) is one extra key that goes into the first
transaction of the current call that commits: the audit record of an API mutation
(:mod:`controlplane.access.audit`). It lands with the change or not at all, so a change that
happened always has its record, and a refused or failed call cannot carry one that says OK.
The store knows nothing of audit: it only carries the key. A transaction that would exceed
etcd's limits with the rider commits without it (the rider then says so, and its owner writes
the record right after).
"""

from __future__ import annotations

from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any, NoReturn

from aetcd import rpc
from google.protobuf.message import Message

from controlplane.store.codec import encode
from controlplane.store.errors import AlreadyExists, Conflict, NotEmpty, NotFound
from controlplane.store.etcd import Etcd
from controlplane.store.keys import prefix_end


@dataclass(frozen=True, slots=True)
class _Guard:
    key: str
    kind: str
    name: str
    # "absent" | "present" | "revision" | "empty" (no key under the prefix) | "unchanged" (no key
    # under the prefix written after `revision`)
    expect: str
    revision: int = 0


@dataclass
class Rider:
    """A key to write in the first transaction of the current call that commits."""

    key: str
    value: bytes
    # Set by the first commit of the call: its revision, and whether the key went with it.
    revision: int = 0
    attached: bool = False
    # Set by the owner when the call is over: later commits (a task the call left behind) skip it.
    closed: bool = False

    def wants(self) -> bool:
        return not self.closed and not self.revision


RIDER: ContextVar[Rider | None] = ContextVar("ccs_txn_rider", default=None)


class Txn:
    """Collects guarded puts and deletes, then commits them in one etcd transaction."""

    def __init__(self) -> None:
        self._guards: list[_Guard] = []
        self._ops: list[Any] = []

    def __len__(self) -> int:
        return len(self._ops)

    # -- preconditions --------------------------------------------------------------

    def require_absent(self, key: str, kind: str, name: str) -> Txn:
        self._guards.append(_Guard(key, kind, name, "absent"))
        return self

    def require_present(self, key: str, kind: str, name: str) -> Txn:
        self._guards.append(_Guard(key, kind, name, "present"))
        return self

    def require_revision(self, key: str, kind: str, name: str, revision: int) -> Txn:
        """Guard on mod_revision; 0 means "must exist, any revision"."""
        if revision:
            self._guards.append(_Guard(key, kind, name, "revision", revision))
        else:
            self._guards.append(_Guard(key, kind, name, "present"))
        return self

    def require_empty(self, prefix: str, kind: str, name: str) -> Txn:
        """Guard: no key exists under ``prefix`` (etcd compares every key in the range)."""
        self._guards.append(_Guard(prefix, kind, name, "empty"))
        return self

    def require_unchanged(self, prefix: str, revision: int, kind: str, name: str) -> Txn:
        """Guard: no key under ``prefix`` was created or changed after ``revision`` (the revision a
        read of the range was made at), so a decision taken on that read still holds. Deleted
        keys do not count."""
        self._guards.append(_Guard(prefix, kind, name, "unchanged", revision))
        return self

    # -- operations -----------------------------------------------------------------

    def put(self, key: str, value: Message | bytes, *, lease: int = 0) -> Txn:
        raw = value if isinstance(value, bytes) else encode(value)
        self._ops.append(rpc.RequestOp(request_put=rpc.PutRequest(key=key.encode(), value=raw, lease=lease)))
        return self

    def create(self, key: str, value: Message, kind: str, name: str) -> Txn:
        return self.require_absent(key, kind, name).put(key, value)

    def update(self, key: str, value: Message, kind: str, name: str, revision: int) -> Txn:
        return self.require_revision(key, kind, name, revision).put(key, value)

    def delete(self, key: str) -> Txn:
        self._ops.append(rpc.RequestOp(request_delete_range=rpc.DeleteRangeRequest(key=key.encode())))
        return self

    def delete_prefix(self, prefix: str) -> Txn:
        req = rpc.DeleteRangeRequest(key=prefix.encode(), range_end=prefix_end(prefix))
        self._ops.append(rpc.RequestOp(request_delete_range=req))
        return self

    def delete_range(self, start: str, end: str) -> Txn:
        """Delete every key in ``[start, end)``."""
        req = rpc.DeleteRangeRequest(key=start.encode(), range_end=end.encode())
        self._ops.append(rpc.RequestOp(request_delete_range=req))
        return self

    # -- commit ---------------------------------------------------------------------

    def _compares(self) -> list[Any]:
        out = []
        for g in self._guards:
            c = rpc.Compare(key=g.key.encode())
            if g.expect == "empty":
                # Over a range with no keys etcd compares against a zero KeyValue, so
                # version == 0 holds exactly when the range is empty.
                c.range_end = prefix_end(g.key)
                c.target, c.result, c.version = rpc.Compare.VERSION, rpc.Compare.EQUAL, 0
            elif g.expect == "unchanged":
                # Over a range, every key must satisfy the comparison: all written at or
                # before the revision read (an empty range compares a zero KeyValue: holds).
                c.range_end = prefix_end(g.key)
                c.target, c.result, c.mod_revision = rpc.Compare.MOD, rpc.Compare.LESS, g.revision + 1
            elif g.expect == "absent":
                c.target, c.result, c.create_revision = rpc.Compare.CREATE, rpc.Compare.EQUAL, 0
            elif g.expect == "present":
                c.target, c.result, c.create_revision = rpc.Compare.CREATE, rpc.Compare.GREATER, 0
            else:
                c.target, c.result, c.mod_revision = rpc.Compare.MOD, rpc.Compare.EQUAL, g.revision
            out.append(c)
        return out

    def _failure(self) -> list[Any]:
        return [
            rpc.RequestOp(
                request_range=rpc.RangeRequest(
                    key=g.key.encode(),
                    range_end=prefix_end(g.key) if g.expect in ("empty", "unchanged") else b"",
                    min_mod_revision=g.revision + 1 if g.expect == "unchanged" else 0,
                    keys_only=True,
                    limit=1,
                )
            )
            for g in self._guards
        ]

    def check_fits(self, etcd: Etcd) -> None:
        """Raise :class:`TooLarge` now if etcd would refuse this transaction for its size
        (for a dry run, which must refuse what the real write would)."""
        etcd.check_fits(rpc.TxnRequest(compare=self._compares(), success=self._ops, failure=self._failure()))

    async def commit(self, etcd: Etcd) -> int:
        """Apply everything or nothing. Returns the revision of the write."""
        compares, ops, failure = self._compares(), self._ops, self._failure()
        rider = RIDER.get()
        if rider is None or not rider.wants() or not ops:
            rider = None
        attach = False
        if rider is not None:
            with_rider = [*ops, rpc.RequestOp(request_put=rpc.PutRequest(key=rider.key.encode(), value=rider.value))]
            attach = etcd.fits(compares, with_rider, failure)
            if attach:
                ops = with_rider
        ok, resp = await etcd.txn(compares, ops, failure)
        if ok:
            if rider is not None and rider.wants():
                rider.revision, rider.attached = int(resp.header.revision), attach
            return int(resp.header.revision)
        self._raise_failed(resp)

    async def check(self, etcd: Etcd) -> None:
        """Evaluate every precondition now, as :meth:`commit` would, and write nothing: a dry run
        refuses a stale ``resource_version``, a vanished network or a changed policy exactly as
        the real call does (same errors). A transaction with no guards has nothing to check."""
        if not self._guards:
            return
        ok, resp = await etcd.txn(self._compares(), [], self._failure())
        if not ok:
            self._raise_failed(resp)

    def _raise_failed(self, resp: Any) -> NoReturn:
        """The error for the first guard the failure branch's reads show broken."""
        for guard, r in zip(self._guards, resp.responses, strict=True):
            kvs = r.response_range.kvs
            if guard.expect == "empty" and kvs:
                raise NotEmpty(guard.kind, guard.name)
            if guard.expect == "unchanged" and kvs:
                raise Conflict(guard.kind, guard.name, guard.revision, kvs[0].mod_revision)
            if guard.expect == "absent" and kvs:
                raise AlreadyExists(guard.kind, guard.name)
            if guard.expect in ("present", "revision") and not kvs:
                raise NotFound(guard.kind, guard.name)
            if guard.expect == "revision" and kvs[0].mod_revision != guard.revision:
                raise Conflict(guard.kind, guard.name, guard.revision, kvs[0].mod_revision)
        # Every guard holds now: the conflicting write landed between the two reads.
        raise Conflict("resource", self._guards[0].name if self._guards else "?", 0, 0)
