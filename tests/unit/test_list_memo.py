"""List answers kept for the cache revision they were made at (:mod:`controlplane.api.list_memo`).

An unchanged list is built once per revision and the same answer is given to every caller
(issue 15: 64 clients listing the same services); a change, seen by the cache or made through
this server and not yet seen by it, is in the next list. The cache is a real informer over
:class:`~tests.unit.reconcile_helpers.FakeEtcd`, whose ``hold`` makes it lag on purpose.
"""

from __future__ import annotations

import asyncio
from typing import Any, cast

from ccs.v1 import api_pb2
from ccs.v1 import resources_pb2 as pb
from controlplane.api.list_memo import ListMemo
from controlplane.api.services import ServiceServicer
from controlplane.store import keys
from controlplane.store.etcd import Etcd
from controlplane.store.txn import Txn
from tests.unit.reconcile_helpers import C, Cluster
from tests.unit.test_planner_helpers import service

CONTEXT = cast(Any, None)


def world() -> tuple[Cluster, ServiceServicer]:
    cl = Cluster()
    cl.informer.synced.set()  # as after the first listing
    cl.add_app("shop", web=2, db=1)
    return cl, ServiceServicer(cast(Etcd, cl.etcd), cl.informer)


def names(resp: api_pb2.ListServicesResponse) -> list[str]:
    return [s.meta.name for s in resp.services]


def listing(**fields: Any) -> api_pb2.ListServicesRequest:
    return api_pb2.ListServicesRequest(cluster=C, application="shop", **fields)


async def test_an_unchanged_list_is_built_once_and_a_write_then_a_list_shows_it() -> None:
    cl, services = world()
    first = await services.ListServices(listing(), CONTEXT)
    assert names(first) == ["db", "web"]
    assert await services.ListServices(listing(), CONTEXT) is first  # the kept answer

    cl.put_service("shop", "cache", 1)  # a write seen by the cache (an agent's, another server's)
    changed = await services.ListServices(listing(), CONTEXT)
    assert names(changed) == ["cache", "db", "web"] and changed.revision > first.revision
    assert await services.ListServices(listing(), CONTEXT) is changed

    cl.delete(keys.service(C, "shop", "db"))
    assert names(await services.ListServices(listing(), CONTEXT)) == ["cache", "web"]


async def test_each_request_has_its_own_answer_pages_and_tokens_included() -> None:
    _, services = world()
    whole = await services.ListServices(listing(), CONTEXT)
    page = await services.ListServices(listing(page_size=1), CONTEXT)
    assert names(page) == ["db"] and page.next_page_token
    rest = await services.ListServices(listing(page_size=1, page_token=page.next_page_token), CONTEXT)
    assert names(rest) == ["web"] and not rest.next_page_token
    assert await services.ListServices(listing(page_size=1), CONTEXT) is page
    assert await services.ListServices(listing(), CONTEXT) is whole
    other_app = await services.ListServices(api_pb2.ListServicesRequest(cluster=C), CONTEXT)
    assert names(other_app) == ["db", "web"] and other_app is not whole  # the cluster-wide list


async def test_a_write_through_this_server_is_listed_even_before_the_cache_applies_it() -> None:
    """Read-your-writes: the answer kept at the old revision is not given once this server has
    committed a newer write; the list waits for the cache (as the cache path does)."""
    cl, services = world()
    before = await services.ListServices(listing(), CONTEXT)
    cl.etcd.hold = True
    added = service("cache", replicas=1)
    added.application, added.cluster = "shop", C
    await Txn().put(keys.service(C, "shop", "cache"), added).commit(cast(Etcd, cl.etcd))
    assert cl.informer.revision == before.revision  # the cache still holds the kept answer's snapshot
    task = asyncio.create_task(services.ListServices(listing(), CONTEXT))
    for _ in range(20):
        await asyncio.sleep(0)
    assert not task.done(), "answered with the list kept from before this server's write"
    cl.etcd.deliver()
    assert names(await task) == ["cache", "db", "web"]


def test_the_memo_holds_the_answers_of_its_newest_revision_only_bounded_in_number_and_bytes() -> None:
    memo = ListMemo(limit=2)
    a, b, c = (ListMemo.key(listing(page_size=n)) for n in (1, 2, 3))
    one, two = pb.Service(), pb.Service()
    memo.put(5, a, one)
    assert memo.get(5, a) is one and memo.get(6, a) is None and memo.get(5, b) is None
    memo.put(4, b, two)  # made from an older snapshot: not kept
    assert memo.get(4, b) is None and memo.get(5, b) is None
    memo.put(6, b, two)  # a newer revision: the older answers go
    assert memo.get(6, b) is two and memo.get(5, a) is None and memo.get(6, a) is None
    memo.put(6, a, one)
    memo.put(6, c, one)  # over the limit: not kept
    assert memo.get(6, a) is one and memo.get(6, c) is None
    heavy = ListMemo(max_bytes=100)
    big, small = pb.Service(meta=pb.Meta(name="x" * 90)), pb.Service(meta=pb.Meta(name="y"))
    heavy.put(1, a, big)
    heavy.put(1, b, big)  # past the byte budget: not kept
    heavy.put(1, c, small)
    assert heavy.get(1, a) is big and heavy.get(1, b) is None and heavy.get(1, c) is small
    assert heavy.bytes == big.ByteSize() + small.ByteSize()
    heavy.put(2, b, big)  # a new revision starts the budget again
    assert heavy.get(2, b) is big and heavy.bytes == big.ByteSize()
    assert ListMemo.key(listing(page_size=1)) == a != ListMemo.key(listing(page_size=1, page_token="x"))
    assert ListMemo.key(api_pb2.ListNodesRequest(cluster=C)) != ListMemo.key(api_pb2.ListApplicationsRequest(cluster=C))
