"""A transaction builder: several keys, one etcd transaction, all or nothing.

Each operation states its precondition (the key must be absent, must exist, must be at
a given mod_revision). On failure the transaction's failure branch reads back every
guarded key, so the caller learns *which* precondition failed and gets the right error
(:class:`NotFound`, :class:`AlreadyExists` or :class:`Conflict`) without a second,
racy read.

A **rider** (:data:`RIDER`, a context variable) is a small transaction of its own that goes
into the first transaction of the current call that commits: the audit record of an API
mutation (:mod:`controlplane.access.audit`), and for a trigger call also its delivery claim
(:mod:`controlplane.triggers.invoke`: a guard that the delivery key is absent, and its put).
It lands with the change or not at all, so a change that happened always has its record, a
refused or failed call cannot carry one that says OK, and an accepted trigger call costs one
etcd round trip. The store knows nothing of audit or claims: it only merges the guards and
the operations. When the merged transaction fails, the rider's guards are checked first and a
broken one raises :class:`RiderRefused` (not the store error itself: a Conflict of the rider's
must not make the call's read-modify-write loop try again, nor be mapped as the change's own
error). A transaction that would exceed etcd's limits with the rider commits without it: a
rider without guards (an audit record) says so and its owner writes the record right after;
one with guards (a claim, which must hold before the change) is committed on its own first.
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


class RiderRefused(Exception):
    """A guard of the rider's own failed: ``error`` is the store error naming it (the change's
    own guards were not looked at, and nothing was written)."""

    def __init__(self, error: NotFound | AlreadyExists | Conflict | NotEmpty) -> None:
        super().__init__(str(error))
        self.error = error


@dataclass
class Rider:
    """What to write (and require) in the first transaction of the current call that commits.

    Commits of one call are expected one after another (as a servicer makes them); two made
    at once would both carry the rider, and with guards the second would fail on the first's."""

    txn: Txn
    # Set by the first commit of the call: its revision, and whether the rider went with it.
    revision: int = 0
    attached: bool = False
    # The revision the rider's own keys were written at (with the change, or alone before it).
    landed: int = 0
    # Set by the owner when the call is over: later commits (a task the call left behind) skip it.
    closed: bool = False

    @classmethod
    def put(cls, key: str, value: bytes) -> Rider:
        """A rider of one key and no guard (an audit record)."""
        return cls(Txn().put(key, value))

    def wants(self) -> bool:
        return not self.closed and not self.revision

    async def land_alone(self, etcd: Etcd) -> int:
        """Commit the rider's own transaction now, apart from any change (:class:`RiderRefused`
        if a guard of its fails); its revision."""
        t = self.txn
        ok, resp = await etcd.txn(t._compares(), t._ops, t._failure())
        if not ok:
            t._raise_if_failed(list(resp.responses), rider=True)
            raise RiderRefused(Conflict("resource", t._guards[0].name if t._guards else "?", 0, 0))
        self.landed = int(resp.header.revision)
        return self.landed


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
        """Apply everything or nothing (with the call's rider, if it has one that has not landed
        yet: module doc). Returns the revision of the write."""
        compares, ops, failure = self._compares(), self._ops, self._failure()
        rider = RIDER.get()
        if rider is None or not rider.wants() or not ops:
            rider = None
        attach = False
        if rider is not None and not rider.landed:
            r = rider.txn
            r_compares, r_failure = r._compares(), r._failure()
            attach = etcd.fits([*compares, *r_compares], [*ops, *r._ops], [*failure, *r_failure])
            if attach:
                compares, ops, failure = [*compares, *r_compares], [*ops, *r._ops], [*failure, *r_failure]
            elif r._guards:
                await rider.land_alone(etcd)
        ok, resp = await etcd.txn(compares, ops, failure, checked=attach)
        if ok:
            revision = int(resp.header.revision)
            if rider is not None and rider.wants():
                rider.revision, rider.attached = revision, attach
                if attach:
                    rider.landed = revision
            return revision
        responses = list(resp.responses)
        if attach and rider is not None:
            rider.txn._raise_if_failed(responses[len(self._guards):], rider=True)
        self._raise_failed(responses[:len(self._guards)])

    async def check(self, etcd: Etcd) -> None:
        """Evaluate every precondition now, as :meth:`commit` would, and write nothing: a dry run
        refuses a stale ``resource_version``, a vanished network or a changed policy exactly as
        the real call does (same errors). A transaction with no guards has nothing to check."""
        if not self._guards:
            return
        ok, resp = await etcd.txn(self._compares(), [], self._failure())
        if not ok:
            self._raise_failed(list(resp.responses))

    def _raise_if_failed(self, responses: list[Any], *, rider: bool = False) -> None:
        """Raise the error for the first guard the failure branch's reads show broken, if one is
        (as :class:`RiderRefused` for a rider's guards)."""
        for guard, r in zip(self._guards, responses, strict=True):
            kvs = r.response_range.kvs
            error: NotFound | AlreadyExists | Conflict | NotEmpty | None = None
            if guard.expect == "empty" and kvs:
                error = NotEmpty(guard.kind, guard.name)
            elif guard.expect == "unchanged" and kvs:
                error = Conflict(guard.kind, guard.name, guard.revision, kvs[0].mod_revision)
            elif guard.expect == "absent" and kvs:
                error = AlreadyExists(guard.kind, guard.name)
            elif guard.expect in ("present", "revision") and not kvs:
                error = NotFound(guard.kind, guard.name)
            elif guard.expect == "revision" and kvs[0].mod_revision != guard.revision:
                error = Conflict(guard.kind, guard.name, guard.revision, kvs[0].mod_revision)
            if error is not None:
                if rider:
                    raise RiderRefused(error)
                raise error

    def _raise_failed(self, responses: list[Any]) -> NoReturn:
        """The error for the first guard the failure branch's reads show broken."""
        self._raise_if_failed(responses)
        # Every guard holds now: the conflicting write landed between the two reads.
        raise Conflict("resource", self._guards[0].name if self._guards else "?", 0, 0)
