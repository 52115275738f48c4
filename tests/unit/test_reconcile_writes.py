"""``Writes``: guarded writes collected by a pass, committed in bounded transactions.

Committed into :class:`~tests.unit.reconcile_helpers.FakeEtcd`, which evaluates the guards as
etcd does, so these tests show what etcd would accept and refuse.
"""

from __future__ import annotations

from typing import cast

import pytest

from ccs.v1 import resources_pb2 as pb
from controlplane.reconcile.writes import MAX_OPS, Writes
from controlplane.store import keys
from controlplane.store.codec import decode, encode
from controlplane.store.errors import AlreadyExists, Conflict, NotFound
from controlplane.store.etcd import Etcd
from tests.unit.reconcile_helpers import C, FakeEtcd, deleted


def ctr(name: str, state: pb.ContainerState = pb.CONTAINER_STATE_ASSIGNED) -> pb.Container:
    c = pb.Container(service="web", status=pb.ContainerStatus(state=state))
    c.meta.name = name
    return c


def key(name: str) -> str:
    return keys.container(C, "shop", "web", name)


async def commit(w: Writes, etcd: FakeEtcd) -> int:
    return await w.commit(cast(Etcd, etcd))


def stored(etcd: FakeEtcd, name: str) -> pb.Container:
    return decode(etcd.kvs[key(name)], pb.Container)


async def test_creates_updates_and_deletes_commit_in_one_transaction() -> None:
    etcd = FakeEtcd()
    rev_a = etcd.put(key("a"), encode(ctr("a")))
    rev_b = etcd.put(key("b"), encode(ctr("b")))
    w = Writes()
    w.put(key("new"), ctr("new"), 0, "container", "new")
    w.put(key("a"), ctr("a", pb.CONTAINER_STATE_RUNNING), rev_a, "container", "a")
    w.delete(key("b"), rev_b, "container", "b")
    before = etcd.revision
    assert await commit(w, etcd) == 3
    assert etcd.revision == before + 1  # one transaction, one revision
    assert stored(etcd, "a").status.state == pb.CONTAINER_STATE_RUNNING
    assert key("new") in etcd.kvs and key("b") not in etcd.kvs
    assert len(w) == 0 and w.pending() == []


@pytest.mark.parametrize(
    ("setup", "error"),
    [
        ("newer", Conflict),  # the record changed after the pass read it
        ("exists", AlreadyExists),  # a create whose key appeared meanwhile
        ("gone", NotFound),  # an update whose key was deleted meanwhile
    ],
)
async def test_a_stale_guard_refuses_the_whole_transaction(setup: str, error: type[Exception]) -> None:
    etcd = FakeEtcd()
    rev = etcd.put(key("a"), encode(ctr("a")))
    w = Writes()
    w.put(key("other"), ctr("other"), 0, "container", "other")
    if setup == "newer":
        w.put(key("a"), ctr("a", pb.CONTAINER_STATE_RUNNING), rev, "container", "a")
        etcd.put(key("a"), encode(ctr("a", pb.CONTAINER_STATE_EXITED)))
    elif setup == "exists":
        w.put(key("b"), ctr("b"), 0, "container", "b")
        etcd.put(key("b"), encode(ctr("b")))
    else:
        w.put(key("a"), ctr("a", pb.CONTAINER_STATE_RUNNING), rev, "container", "a")
        etcd.delete(key("a"))
    before = dict(etcd.kvs)
    with pytest.raises(error):
        await commit(w, etcd)
    assert etcd.kvs == before  # all or nothing: "other" was not created either


async def test_a_large_pass_is_split_into_transactions_etcd_accepts() -> None:
    etcd = FakeEtcd()
    etcd.max_txn_ops = MAX_OPS  # a transaction over the limit would raise TooLarge
    w = Writes()
    n = 2 * MAX_OPS + 10
    for i in range(n):
        w.put(key(f"c{i}"), ctr(f"c{i}"), 0, "container", f"c{i}")
    for i in range(3):
        w.event(keys.event(C, f"e{i}"), pb.Event(reason="Test"))
    before = etcd.revision
    assert await commit(w, etcd) == n
    assert etcd.revision == before + 3
    assert len(etcd.values(keys.containers(C))) == n and len(etcd.values(keys.events(C))) == 3


async def test_with_tolerate_conflicts_a_refused_chunk_is_counted_and_the_others_land() -> None:
    etcd = FakeEtcd()
    stale = etcd.put(key("c0"), encode(ctr("c0")))
    etcd.put(key("c0"), encode(ctr("c0", pb.CONTAINER_STATE_RUNNING)))  # the agent's report
    w = Writes(tolerate_conflicts=True)
    w.put(key("c0"), ctr("c0", pb.CONTAINER_STATE_PENDING), stale, "container", "c0")
    for i in range(1, MAX_OPS + 5):  # the first chunk holds c0; the rest go in a second one
        w.put(key(f"c{i}"), ctr(f"c{i}"), 0, "container", f"c{i}")
    assert await commit(w, etcd) == 5  # c100..c104
    assert w.conflicts == 1
    assert stored(etcd, "c0").status.state == pb.CONTAINER_STATE_RUNNING  # not overwritten
    assert key(f"c{MAX_OPS}") in etcd.kvs and key("c1") not in etcd.kvs


async def test_deleting_an_application_removes_what_it_owns_in_the_same_transaction() -> None:
    etcd = FakeEtcd()
    app = pb.Application()
    app.meta.name = "shop"
    rev = etcd.put(keys.app(C, "shop"), encode(app))
    etcd.put(keys.release(C, "shop", 1), encode(pb.Release()))
    etcd.put(keys.service(C, "shop", "web"), encode(pb.Service()))
    etcd.put(keys.container(C, "blog", "web", "x"), encode(ctr("x")))
    w = Writes()
    w.delete(keys.app(C, "shop"), rev, "application", "shop", with_prefixes=keys.owned_by_app(C, "shop"))
    before = etcd.revision
    await commit(w, etcd)
    assert etcd.revision == before + 1
    assert list(etcd.values("/ccs/c/")) == [keys.container(C, "blog", "web", "x")]


async def test_a_second_write_of_a_key_in_one_pass_keeps_the_first_guard() -> None:
    etcd = FakeEtcd()
    rev = etcd.put(key("a"), encode(ctr("a")))
    w = Writes()
    w.put(key("a"), ctr("a", pb.CONTAINER_STATE_RUNNING), rev, "container", "a")
    w.put(key("a"), ctr("a", pb.CONTAINER_STATE_EXITED), 12345, "container", "a")
    assert w.pending()[0][2] == rev
    await commit(w, etcd)
    assert stored(etcd, "a").status.state == pb.CONTAINER_STATE_EXITED


async def test_created_then_deleted_in_one_pass_writes_nothing() -> None:
    w = Writes()
    w.put(key("a"), ctr("a"), 0, "container", "a")
    w.delete(key("a"), 0, "container", "a")
    assert w.pending() == []
    etcd = FakeEtcd()
    before = etcd.revision
    assert await commit(w, etcd) == 0 and etcd.revision == before


def test_rollback_forgets_what_was_added_since_the_savepoint_and_restores_what_it_replaced() -> None:
    w = Writes()
    w.put(key("a"), ctr("a"), 7, "container", "a")
    w.event(keys.event(C, "e1"), pb.Event(reason="Kept"))
    mark = w.savepoint()
    w.put(key("a"), ctr("a", pb.CONTAINER_STATE_RUNNING), 7, "container", "a")
    w.put(key("b"), ctr("b"), 0, "container", "b")
    w.delete(key("c"), 3, "container", "c")
    w.event(keys.event(C, "e2"), pb.Event(reason="Dropped"))
    w.rollback(mark)
    assert [(k, v.status.state if isinstance(v, pb.Container) else None, rev) for k, v, rev in w.pending()] == [
        (key("a"), pb.CONTAINER_STATE_ASSIGNED, 7)]
    assert [cast(pb.Event, e).reason for e in w.events()] == ["Kept"]
    assert deleted(w) == set()


def event(reason: str) -> tuple[str, pb.Event]:
    return keys.event(C, reason), pb.Event(reason=reason)


def stored_events(etcd: FakeEtcd) -> dict[str, int]:
    """Reason -> the revision the event was committed at."""
    return {decode(kv, pb.Event).reason: kv.mod_revision for k, kv in etcd.kvs.items() if k.startswith(keys.events(C))}


async def test_an_event_told_of_a_write_commits_in_that_writes_transaction_even_past_the_first() -> None:
    etcd = FakeEtcd()
    etcd.max_txn_ops = MAX_OPS
    w = Writes()
    for i in range(MAX_OPS + 5):  # c100.. go in the second transaction
        w.put(key(f"c{i}"), ctr(f"c{i}"), 0, "container", f"c{i}")
    assert w.event_with(key(f"c{MAX_OPS + 2}"), *event("OfC102"))
    assert w.event_with(key("c0"), *event("OfC0"))
    assert [cast(pb.Event, e).reason for e in w.events()] == ["OfC0", "OfC102"]
    await commit(w, etcd)
    told = stored_events(etcd)
    assert told["OfC0"] == etcd.kvs[key("c0")].mod_revision
    assert told["OfC102"] == etcd.kvs[key(f"c{MAX_OPS + 2}")].mod_revision != told["OfC0"]


async def test_an_event_is_lost_with_its_refused_write_and_never_told_of_nothing() -> None:
    etcd = FakeEtcd()
    stale = etcd.put(key("a"), encode(ctr("a")))
    etcd.put(key("a"), encode(ctr("a", pb.CONTAINER_STATE_RUNNING)))  # the agent's report
    w = Writes(tolerate_conflicts=True)
    w.put(key("a"), ctr("a", pb.CONTAINER_STATE_PENDING), stale, "container", "a")
    assert w.event_with(key("a"), *event("Stopping"))
    assert not w.event_with(key("nothing-written"), *event("Invented"))
    await commit(w, etcd)
    assert w.conflicts == 1 and stored_events(etcd) == {}


def test_events_told_of_writes_follow_them_through_rewrites_deletes_and_rollbacks() -> None:
    w = Writes()
    w.put(key("a"), ctr("a"), 7, "container", "a")
    w.event_with(key("a"), *event("Stopping"))
    w.put(key("a"), ctr("a", pb.CONTAINER_STATE_RUNNING), 7, "container", "a")  # a second write keeps it
    assert [cast(pb.Event, e).reason for e in w.events()] == ["Stopping"]
    mark = w.savepoint()
    w.event_with(key("a"), *event("Removing"))
    w.delete(key("a"), 7, "container", "a")
    assert [cast(pb.Event, e).reason for e in w.events()] == ["Stopping", "Removing"]
    w.rollback(mark)
    assert [cast(pb.Event, e).reason for e in w.events()] == ["Stopping"]
    w.put(key("new"), ctr("new"), 0, "container", "new")
    w.event_with(key("new"), *event("Created"))
    w.delete(key("new"), 0, "container", "new")  # created and deleted in one pass: nothing happened
    assert [cast(pb.Event, e).reason for e in w.events()] == ["Stopping"]


async def test_writes_bound_to_another_commit_in_its_transaction_or_not_at_all() -> None:
    """A unit is never cut across chunks: with the anchor's guard stale, none of it lands,
    while the free writes around it still commit (tolerated conflict)."""
    etcd = FakeEtcd()
    rev_anchor = etcd.put(key("anchor"), encode(ctr("anchor")))
    w = Writes(tolerate_conflicts=True)
    members = [f"m{i}" for i in range(MAX_OPS // 2)]
    for name in members:  # written before the anchor, as fencing does
        w.put(key(name), ctr(name), 0, "container", name)
    for i in range(MAX_OPS - 10):
        w.put(key(f"free{i}"), ctr(f"free{i}"), 0, "container", f"free{i}")
    w.put(key("anchor"), ctr("anchor", pb.CONTAINER_STATE_RUNNING), rev_anchor, "container", "anchor")
    assert all(w.bind(key(name), key("anchor")) for name in members)
    assert not w.bind(key("nothing pending"), key("anchor"))
    etcd.put(key("anchor"), encode(ctr("anchor", pb.CONTAINER_STATE_EXITED)))  # the guard goes stale
    await commit(w, etcd)
    assert w.conflicts == 1
    assert not any(key(name) in etcd.kvs for name in members)
    assert all(key(f"free{i}") in etcd.kvs for i in range(MAX_OPS - 10))


async def test_a_needed_write_added_after_the_writes_needing_it_is_written_once() -> None:
    """It moves to before its first needer, and only there (it was also written at its own
    place, and that second create failed its whole transaction: 297 of 300 containers landed)."""
    etcd = FakeEtcd()
    w = Writes()
    block = keys.subnet(C, "n1", "shop", "default")
    for i in range(2 * MAX_OPS):
        w.put(key(f"c{i}"), ctr(f"c{i}"), 0, "container", f"c{i}", needs=(block,))
    w.put(block, pb.Event(reason="block"), 0, "block", "n1")
    assert await commit(w, etcd) == 2 * MAX_OPS + 1
    assert len(etcd.values(keys.containers(C))) == 2 * MAX_OPS
