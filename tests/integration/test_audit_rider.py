"""Where an audit record is written (controlplane/access/audit.py), against a real etcd: in the
change's own transaction when it fits, right after it otherwise, rewritten when the call fails
after its write, and pruned after the retention. The server-level view (a real change through
the API) is tests/integration/test_api_access.py; these drive ``AuditLog.around`` directly to
make the cases no API call makes on demand (a write followed by an error, a transaction too
big for the record)."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from typing import Any

import grpc
import pytest

from ccs.v1 import resources_pb2 as pb
from controlplane.access.audit import AuditLog
from controlplane.auth import Principal
from controlplane.janitor import prune_audit
from controlplane.store import keys
from controlplane.store.etcd import Etcd
from controlplane.store.txn import Txn
from tests.conftest import EtcdProc

pytestmark = pytest.mark.etcd

METHOD = "/ccs.v1.ServiceService/ScaleService"
WHO = Principal("ci", "deployer", id="0123456789abcdef")


class Context:
    """The three things the audit reads of a grpc context, and abort as grpc does it."""

    def __init__(self) -> None:
        self._code: grpc.StatusCode | None = None
        self._details = ""

    def peer(self) -> str:
        return "ipv4:10.0.0.7:51234"

    def code(self) -> grpc.StatusCode | None:
        return self._code

    def details(self) -> str:
        return self._details

    async def abort(self, code: grpc.StatusCode, details: str = "", trailing_metadata: Any = ()) -> None:
        self._code, self._details = code, details
        raise grpc.aio.AbortError()


@pytest.fixture
async def store(etcd: EtcdProc) -> AsyncIterator[Etcd]:
    e = Etcd([etcd.url], max_txn_ops=3)
    yield e
    await e.close()


async def record_of(store: Etcd, before: int) -> tuple[pb.AuditRecord, int, int]:
    """The one audit record written after revision ``before``, with its create and mod revisions."""
    res = await store.range(keys.AUDIT)
    new = [kv for kv in res.kvs if kv.create_revision > before]
    assert len(new) == 1, new
    return pb.AuditRecord.FromString(new[0].value), new[0].create_revision, new[0].mod_revision


class Request:
    cluster, application, name = "prod", "shop", "web"


async def test_a_change_that_lands_carries_its_record(store: Etcd, unique: str) -> None:
    _, before = await store.get_with_revision("/")
    wrote: list[int] = []

    async def change(ctx: Any) -> str:
        wrote.append(await Txn().put(f"/test/{unique}/a", b"1").commit(store))
        return "answer"

    assert await AuditLog(store).around(WHO, METHOD, Request(), Context(), change) == "answer"
    rec, created, modified = await record_of(store, before)
    assert created == modified == wrote[0]  # one transaction, and nothing written after it
    assert (rec.result, rec.wrote, rec.token_name, rec.target, rec.peer) == (
        "OK", True, "ci", "service prod/shop/web", "ipv4:10.0.0.7:51234")


async def test_a_call_that_fails_after_its_write_is_recorded_as_failed(store: Etcd, unique: str) -> None:
    _, before = await store.get_with_revision("/")
    wrote: list[int] = []

    async def change(ctx: Any) -> None:
        wrote.append(await Txn().put(f"/test/{unique}/a", b"1").commit(store))
        await ctx.abort(grpc.StatusCode.FAILED_PRECONDITION, "the second step was refused")

    with pytest.raises(grpc.aio.AbortError):
        await AuditLog(store).around(WHO, METHOD, Request(), Context(), change)
    rec, created, modified = await record_of(store, before)
    assert created == wrote[0] < modified  # it rode the write, then was corrected
    assert (rec.result, rec.message, rec.wrote, rec.revision) == (
        "FAILED_PRECONDITION", "the second step was refused", True, wrote[0])


async def test_a_transaction_too_big_for_the_record_commits_and_the_record_follows(
    store: Etcd, unique: str
) -> None:
    _, before = await store.get_with_revision("/")
    wrote: list[int] = []

    async def change(ctx: Any) -> None:
        txn = Txn()
        for i in range(store.max_txn_ops):  # full: one more operation would be refused by etcd
            txn.put(f"/test/{unique}/{i}", b"1")
        wrote.append(await txn.commit(store))

    await AuditLog(store).around(WHO, METHOD, Request(), Context(), change)
    rec, created, _ = await record_of(store, before)
    assert created > wrote[0]
    assert (rec.result, rec.wrote, rec.revision) == ("OK", True, wrote[0])


async def test_a_call_that_writes_nothing_says_so(store: Etcd) -> None:
    _, before = await store.get_with_revision("/")

    async def refused(ctx: Any) -> None:
        await ctx.abort(grpc.StatusCode.NOT_FOUND, "service 'shop/web' not found")

    with pytest.raises(grpc.aio.AbortError):
        await AuditLog(store).around(WHO, METHOD, Request(), Context(), refused)
    rec, _, _ = await record_of(store, before)
    assert (rec.result, rec.wrote, rec.revision, rec.message) == ("NOT_FOUND", False, 0, "service 'shop/web' not found")

    async def no_op(ctx: Any) -> None:
        return None

    _, before = await store.get_with_revision("/")
    await AuditLog(store).around(WHO, METHOD, Request(), Context(), no_op)
    rec, _, _ = await record_of(store, before)
    assert (rec.result, rec.wrote) == ("OK", False)


async def test_a_transaction_after_the_call_does_not_take_the_record(store: Etcd, unique: str) -> None:
    """A write made once the call is over (a task it left behind) carries nothing."""
    _, before = await store.get_with_revision("/")

    async def no_op(ctx: Any) -> None:
        return None

    await AuditLog(store).around(WHO, METHOD, Request(), Context(), no_op)
    revision = await Txn().put(f"/test/{unique}/late", b"1").commit(store)
    res = await store.range(keys.AUDIT)
    assert not [kv for kv in res.kvs if kv.mod_revision == revision]
    await record_of(store, before)


async def test_records_older_than_the_retention_are_pruned(store: Etcd) -> None:
    now_ns = time.time_ns()
    old, recent = f"{now_ns - 7200 * 10**9:020d}-old", f"{now_ns - 600 * 10**9:020d}-new"
    await Txn().put(keys.audit(old), b"").put(keys.audit(recent), b"").commit(store)
    await prune_audit(store, retention=3600)
    assert await store.get(keys.audit(old)) is None
    assert await store.get(keys.audit(recent)) is not None
    await Txn().delete(keys.audit(recent)).commit(store)
