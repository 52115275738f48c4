"""The store against a real etcd: transactions, optimistic concurrency, paging, watch."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from ccs.v1 import resources_pb2 as pb
from controlplane.store import AlreadyExists, Compacted, Conflict, NotEmpty, NotFound, keys, reads
from controlplane.store.codec import decode
from controlplane.store.etcd import Etcd
from controlplane.store.txn import Txn

pytestmark = pytest.mark.etcd


@pytest.fixture
async def store(etcd) -> AsyncIterator[Etcd]:  # type: ignore[no-untyped-def]
    client = Etcd([etcd.url])
    await client.wait_ready()
    yield client
    await client.close()


def cluster(name: str) -> pb.Cluster:
    return pb.Cluster(meta=pb.Meta(id=name + "-id", name=name))


async def test_create_then_duplicate_is_refused_and_changes_nothing(store: Etcd, unique: str) -> None:
    rev = await Txn().create(keys.cluster(unique), cluster(unique), "cluster", unique).commit(store)
    got = await reads.get(store, keys.cluster(unique), pb.Cluster, "cluster", unique)
    assert got.meta.resource_version == rev
    txn = Txn().create(keys.cluster(unique), cluster(unique), "cluster", unique)
    txn.put(keys.app(unique, "side-effect"), pb.Application())
    with pytest.raises(AlreadyExists, match=unique):
        await txn.commit(store)
    assert await store.get(keys.app(unique, "side-effect")) is None


async def test_stale_resource_version_is_a_conflict_and_writes_nothing(store: Etcd, unique: str) -> None:
    key = keys.cluster(unique)
    rv1 = await Txn().create(key, cluster(unique), "cluster", unique).commit(store)
    updated = cluster(unique)
    updated.description = "second"
    rv2 = await Txn().update(key, updated, "cluster", unique, rv1).commit(store)
    assert rv2 > rv1
    stale = cluster(unique)
    stale.description = "lost update"
    txn = Txn().update(key, stale, "cluster", unique, rv1).put(keys.app(unique, "x"), pb.Application())
    with pytest.raises(Conflict) as info:
        await txn.commit(store)
    assert info.value.expected == rv1 and info.value.actual == rv2
    current = await reads.get(store, key, pb.Cluster, "cluster", unique)
    assert current.description == "second"
    assert await store.get(keys.app(unique, "x")) is None


async def test_update_of_missing_key_is_not_found(store: Etcd, unique: str) -> None:
    with pytest.raises(NotFound):
        await Txn().update(keys.cluster(unique), cluster(unique), "cluster", unique, 5).commit(store)


async def test_require_empty_guards_a_range(store: Etcd, unique: str) -> None:
    await Txn().require_empty(keys.apps(unique), "applications", unique).put(
        keys.cluster(unique), cluster(unique)
    ).commit(store)
    await Txn().put(keys.app(unique, "a"), pb.Application()).commit(store)
    with pytest.raises(NotEmpty):
        await Txn().require_empty(keys.apps(unique), "applications", unique).delete(
            keys.cluster(unique)
        ).commit(store)
    assert await store.get(keys.cluster(unique)) is not None


async def test_many_keys_in_one_transaction_are_all_or_nothing(store: Etcd, unique: str) -> None:
    txn = Txn().require_absent(keys.cluster(unique), "cluster", unique)
    for i in range(50):
        txn.put(keys.service(unique, "app", f"s{i}"), pb.Service())
    rev = await txn.commit(store)
    res = await store.range(keys.services(unique, "app"))
    assert len(res.kvs) == 50
    assert {kv.mod_revision for kv in res.kvs} == {rev}


async def test_paging_is_a_consistent_snapshot(store: Etcd, unique: str) -> None:
    txn = Txn()
    for i in range(25):
        txn.put(keys.node(unique, f"n{i:02d}"), pb.Node(meta=pb.Meta(name=f"n{i:02d}")))
    await txn.commit(store)
    first = await reads.list_page(store, keys.nodes(unique), pb.Node, page_size=10)
    assert len(first.items) == 10 and first.next_page_token
    # A write after the first page must not show up in later pages.
    await Txn().put(keys.node(unique, "n99"), pb.Node(meta=pb.Meta(name="n99"))).commit(store)
    seen = [n.meta.name for n in first.items]
    token = first.next_page_token
    while token:
        page = await reads.list_page(store, keys.nodes(unique), pb.Node, page_size=10, page_token=token)
        assert page.revision == first.revision
        seen += [n.meta.name for n in page.items]
        token = page.next_page_token
    assert seen == [f"n{i:02d}" for i in range(25)]


async def test_bad_page_token_is_refused(store: Etcd, unique: str) -> None:
    with pytest.raises(reads.BadPageToken, match="page_token"):
        await reads.list_page(store, keys.nodes(unique), pb.Node, page_token="garbage!")


async def test_watch_resumes_without_gap_or_duplicate(store: Etcd, unique: str) -> None:
    start = (await store.get_with_revision("/x"))[1] + 1
    for i in range(6):
        await Txn().put(keys.node(unique, f"n{i}"), pb.Node(meta=pb.Meta(name=f"n{i}"))).commit(store)
    seen: list[int] = []

    async def take(from_rev: int, n: int) -> None:
        async for batch in store.watch(keys.subtree(unique), from_rev):
            seen.extend(ch.revision for ch in batch)
            if len(seen) >= n:
                return

    await asyncio.wait_for(take(start, 3), 10)
    await asyncio.wait_for(take(seen[-1] + 1, 6), 10)
    assert len(seen) == len(set(seen)) == 6
    assert seen == sorted(seen)


async def test_watch_yields_a_whole_transaction_at_once(store: Etcd, unique: str) -> None:
    start = (await store.get_with_revision("/x"))[1] + 1
    txn = Txn()
    for i in range(5):
        txn.put(keys.node(unique, f"n{i}"), pb.Node())
    rev = await txn.commit(store)

    async def first() -> list[int]:
        async for batch in store.watch(keys.subtree(unique), start):
            return [ch.revision for ch in batch]
        return []

    assert await asyncio.wait_for(first(), 10) == [rev] * 5


async def test_watch_from_compacted_revision_says_so(store: Etcd, unique: str) -> None:
    r1 = await Txn().put(keys.node(unique, "a"), pb.Node()).commit(store)
    r2 = await Txn().put(keys.node(unique, "a"), pb.Node()).commit(store)
    await store.compact(r2)
    with pytest.raises(Compacted):
        async for _ in store.watch(keys.subtree(unique), r1):
            break


async def test_resource_version_comes_from_etcd_not_the_value(store: Etcd, unique: str) -> None:
    c = cluster(unique)
    c.meta.resource_version = 999_999
    rev = await Txn().put(keys.cluster(unique), c).commit(store)
    kv = await store.get(keys.cluster(unique))
    assert kv is not None
    assert decode(kv, pb.Cluster).meta.resource_version == rev
