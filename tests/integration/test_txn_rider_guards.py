"""A rider with guards of its own (a trigger's delivery claim), against a real etcd
(:mod:`controlplane.store.txn`): it lands in the call's first transaction, or on its own just
before it when the two would not fit together; a broken guard of the rider's is reported as
:class:`RiderRefused` (checked before the change's own guards) and nothing is written."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator

import pytest

from controlplane.store.errors import AlreadyExists, Conflict
from controlplane.store.etcd import Etcd
from controlplane.store.txn import RIDER, Rider, RiderRefused, Txn
from tests.conftest import EtcdProc

pytestmark = pytest.mark.etcd


@pytest.fixture
async def store(etcd: EtcdProc) -> AsyncIterator[Etcd]:
    e = Etcd([etcd.url], max_txn_ops=3)  # so a change of 3 puts leaves no room for a rider's
    yield e
    await e.close()


def claim(prefix: str) -> Rider:
    k = f"{prefix}claim"
    return Rider(Txn().require_absent(k, "delivery", "d-1").put(k, b"1").put(f"{prefix}record", b"accepted"))


def create(prefix: str, value: bytes) -> Txn:
    return Txn().require_absent(f"{prefix}change", "thing", "change").put(f"{prefix}change", value)


async def commit_with(rider: Rider, txn: Txn, store: Etcd) -> int:
    reset = RIDER.set(rider)
    try:
        return await txn.commit(store)
    finally:
        RIDER.reset(reset)
        rider.closed = True


async def test_a_rider_with_guards_lands_in_the_changes_transaction(store: Etcd) -> None:
    p = f"/ccs-test/rider/{uuid.uuid4().hex}/"
    rider = claim(p)
    revision = await commit_with(rider, create(p, b"x"), store)
    assert rider.attached and rider.landed == rider.revision == revision
    for k in ("claim", "record", "change"):
        got = await store.get(f"{p}{k}")
        assert got is not None and got.mod_revision == revision, k


async def test_a_broken_rider_guard_refuses_the_whole_transaction_before_the_changes_own(store: Etcd) -> None:
    p = f"/ccs-test/rider/{uuid.uuid4().hex}/"
    await Txn().put(f"{p}claim", b"1").put(f"{p}change", b"old").commit(store)
    rider = claim(p)
    # The change's own guard fails too (the key exists): the rider's failure is the one reported,
    # as RiderRefused, so a read-modify-write loop does not take it for its own Conflict.
    with pytest.raises(RiderRefused) as refused:
        await commit_with(rider, create(p, b"new"), store)
    assert isinstance(refused.value.error, AlreadyExists) and refused.value.error.kind == "delivery"
    assert not isinstance(refused.value, Conflict)
    assert not rider.landed and not rider.revision
    assert await store.get(f"{p}record") is None
    got = await store.get(f"{p}change")
    assert got is not None and got.value == b"old"


async def test_a_rider_that_does_not_fit_lands_alone_first_and_is_still_refused_when_broken(store: Etcd) -> None:
    p = f"/ccs-test/rider/{uuid.uuid4().hex}/"
    big = Txn().put(f"{p}a", b"1").put(f"{p}b", b"1").put(f"{p}c", b"1")  # 3 ops: the limit
    rider = claim(p)
    revision = await commit_with(rider, big, store)
    assert not rider.attached and 0 < rider.landed < rider.revision == revision
    claimed = await store.get(f"{p}claim")
    assert claimed is not None and claimed.mod_revision == rider.landed
    # The same claim again: refused on its own, before the change is sent.
    again = claim(p)
    with pytest.raises(RiderRefused):
        await commit_with(again, Txn().put(f"{p}d", b"1").put(f"{p}e", b"1").put(f"{p}f", b"1"), store)
    assert await store.get(f"{p}d") is None and not again.landed
