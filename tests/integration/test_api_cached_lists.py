"""List RPCs served from the watch cache give the etcd path's answers (issue 15).

Each list request runs against two servicers on the same real etcd: one with the informer (the
cache path) and one without (the etcd path, as before). Pages, tokens, filters and errors must
match; tokens of one path must work on the other; a write is seen by the next list (read your
writes); and a spy on the cache servicer's etcd client shows the cache path was really taken.
"""

from __future__ import annotations

import base64
import json
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, cast

import grpc
import pytest
from google.protobuf.message import Message

from ccs.v1 import api_pb2
from ccs.v1 import resources_pb2 as pb
from controlplane.api import cached_lists
from controlplane.api.apps import ApplicationServicer
from controlplane.api.common import CacheReader
from controlplane.api.nodes import NodeServicer
from controlplane.api.services import ContainerServicer, ServiceServicer
from controlplane.dispatcher.logs_relay import LogBroker
from controlplane.informer import ClusterState, Informer
from controlplane.store import NotFound, keys, reads
from controlplane.store.etcd import Etcd
from controlplane.store.txn import Txn
from tests.conftest import EtcdProc, start_etcd

pytestmark = pytest.mark.etcd


class Aborted(Exception):
    def __init__(self, code: grpc.StatusCode, message: str) -> None:
        super().__init__(code, message)
        self.code, self.message = code, message


class Context:
    """What the servicers use of a grpc.aio.ServicerContext: ``abort``."""

    async def abort(self, code: grpc.StatusCode, message: str, *_: Any) -> None:
        raise Aborted(code, message)


CONTEXT = cast(grpc.aio.ServicerContext, Context())


@dataclass
class Servicers:
    services: ServiceServicer
    containers: ContainerServicer
    nodes: NodeServicer
    apps: ApplicationServicer


@dataclass
class World:
    etcd: Etcd
    informer: Informer
    cached: Servicers
    direct: Servicers
    etcd_reads: list[str]  # what the spied client read from etcd while `spying`
    spying: list[bool]


def servicers(etcd: Etcd, informer: Informer, cache: bool) -> Servicers:
    s = Servicers(ServiceServicer(etcd, informer), ContainerServicer(etcd, informer, LogBroker()),
                  NodeServicer(etcd, informer), ApplicationServicer(etcd, informer))
    if not cache:
        for servicer in (s.services, s.containers, s.nodes, s.apps):
            servicer.cache = CacheReader(etcd, None)
    return s


@pytest.fixture(scope="module")
def own_etcd(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EtcdProc]:
    """An etcd of this module's own. The session's etcd is watched by the session's ccs-server,
    whose reconcilers would act on the records seeded here (a service's status, containers with
    no node) between the two paths' reads, so the pages would differ for that reason alone."""
    proc = start_etcd(tmp_path_factory.mktemp("cached-lists-etcd"))
    yield proc
    proc.stop()


@pytest.fixture
async def world(own_etcd: EtcdProc, unique: str) -> AsyncIterator[World]:
    """The two paths over one etcd client; afterwards the test's clusters are removed (a damaged
    cluster record left behind would fail every later ListClusters)."""
    client = Etcd([own_etcd.url])
    await client.wait_ready()
    informer = Informer(client)
    await informer.start()
    seen: list[str] = []
    spying = [False]
    real_get, real_range = client.get, client.range

    async def get(key: str) -> Any:
        if spying[0]:
            seen.append(key)
        return await real_get(key)

    async def range_(prefix: str, *args: Any, **kwargs: Any) -> Any:
        if spying[0]:
            seen.append(prefix)
        return await real_range(prefix, *args, **kwargs)

    client.get, client.range = get, range_  # type: ignore[method-assign]
    try:
        yield World(client, informer, servicers(client, informer, True), servicers(client, informer, False),
                    seen, spying)
    finally:
        await informer.stop()
        for name in (unique, f"{unique}-big"):
            await Txn().delete(keys.cluster(name)).delete_prefix(keys.subtree(name)).commit(client)
        await client.close()


@contextmanager
def from_cache(world: World) -> Iterator[None]:
    """The calls inside read nothing from etcd (the cache answered them)."""
    world.etcd_reads.clear()
    world.spying[0] = True
    try:
        yield
    finally:
        world.spying[0] = False
    assert world.etcd_reads == [], f"read etcd: {world.etcd_reads}"


async def seed(etcd: Etcd, cluster: str) -> None:
    """Names chosen so that key order is not tuple order: "a-b/..." sorts before "a/..." as keys
    ('-' < '/'), after it as (app, service) pairs."""
    txn = Txn().put(keys.cluster(cluster), pb.Cluster(meta=pb.Meta(name=cluster, id=cluster)))
    for app in ("a", "a-b", "b"):
        txn.put(keys.app(cluster, app), pb.Application(meta=pb.Meta(name=app, id=f"{cluster}-{app}")))
    await txn.commit(etcd)
    for node in ("n2", "n1", "n10", "n3"):
        await Txn().put(keys.node(cluster, node), pb.Node(meta=pb.Meta(name=node, id=node))).commit(etcd)
    for app, svc in (("a", "x"), ("a", "x-y"), ("a-b", "y"), ("b", "z"), ("a", "w")):
        await Txn().put(keys.service(cluster, app, svc), pb.Service(meta=pb.Meta(name=svc))).commit(etcd)
        for i in range(3):
            name = f"{svc}-{i}"
            await Txn().put(keys.container(cluster, app, svc, name), pb.Container(
                meta=pb.Meta(name=name, id=f"{cluster}-{app}-{name}"),
                node=("n1", "n2", "")[i])).commit(etcd)


Outcome = tuple[Any, ...]


def token_key(token: str) -> str:
    """The key a token resumes at (its revision differs between paths when other writes land)."""
    if not token:
        return ""
    data = json.loads(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)))
    return str(data["k"])


LISTED = ("services", "containers", "nodes", "applications")


def shown(resp: Message) -> Outcome:
    items = [m.SerializeToString(deterministic=True) for f, v in resp.ListFields()
             if f.name in LISTED for m in v]
    return ("page", items, token_key(getattr(resp, "next_page_token", "")))


async def outcome(call: Awaitable[Message]) -> Outcome:
    try:
        return shown(await call)
    except Aborted as e:
        return ("error", e.code, e.message)


async def pages(list_: Callable[[str], Awaitable[Message]]) -> list[Outcome]:
    """Every page, following the tokens this path hands out."""
    out: list[Outcome] = []
    token = ""
    for _ in range(50):
        try:
            resp = await list_(token)
        except Aborted as e:
            return [*out, ("error", e.code, e.message)]
        out.append(shown(resp))
        token = getattr(resp, "next_page_token", "")
        if not token:
            return out
    raise AssertionError("more than 50 pages")


Request = Callable[[Servicers, str], Awaitable[Message]]


def requests(cluster: str) -> list[tuple[str, Request]]:
    """(what, request) pairs: every list with every filter, at page sizes that cut it."""
    out: list[tuple[str, Request]] = []

    def services(app: str, size: int) -> Request:
        return lambda s, t: s.services.ListServices(
            api_pb2.ListServicesRequest(cluster=cluster, application=app, page_size=size, page_token=t), CONTEXT)

    def containers(app: str, svc: str, node: str, size: int, name: str = "") -> Request:
        return lambda s, t: s.containers.ListContainers(api_pb2.ListContainersRequest(
            cluster=cluster, application=app, service=svc, node=node, name=name, page_size=size, page_token=t),
            CONTEXT)

    def nodes(size: int) -> Request:
        return lambda s, t: s.nodes.ListNodes(
            api_pb2.ListNodesRequest(cluster=cluster, page_size=size, page_token=t), CONTEXT)

    def apps(size: int) -> Request:
        return lambda s, t: s.apps.ListApplications(
            api_pb2.ListApplicationsRequest(cluster=cluster, page_size=size, page_token=t), CONTEXT)

    for size in (0, 1, 2, 5):
        for app in ("", "a", "a-b", "none"):
            out.append((f"services app={app} size={size}", services(app, size)))
        for app, svc, node in (("", "", ""), ("a", "", ""), ("a", "x", ""), ("", "", "n1"), ("a", "", "n2"),
                               ("a-b", "y", "n1"), ("", "x", ""), ("none", "", ""), ("a", "none", "")):
            out.append((f"containers app={app} service={svc} node={node} size={size}",
                        containers(app, svc, node, size)))
        for app, name, node in (("", "x-y-1", ""), ("a", "w-2", ""), ("b", "x-y-1", ""), ("", "x-1", "n2"),
                                ("", "none-0", "")):
            out.append((f"containers app={app} name={name} node={node} size={size}",
                        containers(app, "", node, size, name)))
        out.append((f"nodes size={size}", nodes(size)))
        out.append((f"apps size={size}", apps(size)))
    out.append(("services size=-1", services("", -1)))
    out.append(("nodes with a token of another list", lambda s, t: s.nodes.ListNodes(api_pb2.ListNodesRequest(
        cluster=cluster, page_token=t or reads.next_page_token(1, keys.app(cluster, "a"))), CONTEXT)))
    out.append(("apps with a bad token", lambda s, t: s.apps.ListApplications(
        api_pb2.ListApplicationsRequest(cluster=cluster, page_token=t or "garbage!"), CONTEXT)))
    return out


async def test_every_list_gives_the_same_pages_tokens_and_errors_from_the_cache_as_from_etcd(
    world: World, unique: str
) -> None:
    await seed(world.etcd, unique)
    for cluster in (unique, f"{unique}-missing"):
        for what, request in requests(cluster):
            with from_cache(world):
                cached = await pages(lambda t: request(world.cached, t))  # noqa: B023 (awaited here)
            direct = await pages(lambda t: request(world.direct, t))  # noqa: B023
            assert cached == direct, f"{cluster}: {what}"
            refused = cluster != unique or any(w in what for w in (
                "services app=none", "app= service=x", "size=-1", "token"))
            assert cached[-1][0] == ("error" if refused else "page"), (what, cached)
    # The order is the keys' ("a-b/y" before "a/w"), not the (application, service) pairs'.
    listed = await world.cached.services.ListServices(api_pb2.ListServicesRequest(cluster=unique), CONTEXT)
    assert [s.meta.name for s in listed.services] == ["y", "w", "x", "x-y", "z"]


async def test_a_token_from_either_path_works_on_the_other_and_stays_on_its_snapshot(
    world: World, unique: str
) -> None:
    await seed(world.etcd, unique)

    def first(s: Servicers, token: str = "") -> Awaitable[api_pb2.ListContainersResponse]:
        return s.containers.ListContainers(
            api_pb2.ListContainersRequest(cluster=unique, page_size=4, page_token=token), CONTEXT)

    with from_cache(world):
        one = await first(world.cached)
    two = await first(world.direct)
    assert one.revision <= two.revision  # the cache's snapshot holds every write made through it
    assert one.revision >= world.etcd.last_write_revision
    with from_cache(world):  # nothing changed since: the cache still is the token's snapshot
        cached_next = await first(world.cached, one.next_page_token)
    assert cached_next == await first(world.direct, one.next_page_token)
    # A token of the etcd path, on the cache path (served by etcd if the revisions differ).
    assert (await first(world.cached, two.next_page_token)).containers == \
        (await first(world.direct, two.next_page_token)).containers
    # A write after the first page: the next page still comes from the token's snapshot.
    await Txn().delete(keys.container(unique, "a", "w", "w-1")).commit(world.etcd)
    await Txn().delete(keys.container(unique, "a", "x-y", "x-y-0")).commit(world.etcd)
    later = await first(world.cached, one.next_page_token)
    assert later == await first(world.direct, one.next_page_token)
    assert [c.meta.name for c in later.containers] == ["w-1", "w-2", "x-y-0", "x-y-1"]  # as at one.revision
    assert later.revision == one.revision


async def test_a_list_right_after_a_write_sees_it_and_one_after_a_delete_does_not(
    world: World, unique: str
) -> None:
    await seed(world.etcd, unique)
    for step in range(5):
        name = f"new-{step}"
        rev = await Txn().put(keys.service(unique, "b", name), pb.Service(meta=pb.Meta(name=name))).commit(world.etcd)
        with from_cache(world):
            listed = await world.cached.services.ListServices(
                api_pb2.ListServicesRequest(cluster=unique, application="b"), CONTEXT)
        assert name in [s.meta.name for s in listed.services]
        assert listed.revision >= rev
        await Txn().delete(keys.service(unique, "b", name)).commit(world.etcd)
        with from_cache(world):
            listed = await world.cached.services.ListServices(
                api_pb2.ListServicesRequest(cluster=unique, application="b"), CONTEXT)
        assert name not in [s.meta.name for s in listed.services]
    await Txn().delete(keys.app(unique, "b")).commit(world.etcd)
    with from_cache(world):
        gone = await outcome(world.cached.services.ListServices(
            api_pb2.ListServicesRequest(cluster=unique, application="b"), CONTEXT))
    assert gone[:2] == ("error", grpc.StatusCode.NOT_FOUND) and "'b'" in gone[2], gone


async def test_what_the_cache_cannot_answer_exactly_is_answered_by_etcd(world: World, unique: str) -> None:
    """A record that does not decode (the cache holds its last good copy), a damaged
    application or cluster record, and a page the byte budget cuts: the cache path leaves these to etcd, so the answer
    (the error naming the bad key, the short page and its token) is the same."""
    await seed(world.etcd, unique)
    big = f"{unique}-big"
    await Txn().put(keys.cluster(big), pb.Cluster(meta=pb.Meta(name=big))).commit(world.etcd)
    for i in range(4):  # 4 x 1.2 MB: the etcd path cuts the page at MAX_PAGE_BYTES (4 MiB)
        await Txn().put(keys.node(big, f"n{i}"), pb.Node(meta=pb.Meta(name=f"n{i}", labels={"x": "y" * 1_200_000}))
                        ).commit(world.etcd)
    cut = await pages(lambda t: world.cached.nodes.ListNodes(api_pb2.ListNodesRequest(cluster=big, page_token=t),
                                                             CONTEXT))
    assert cut == await pages(lambda t: world.direct.nodes.ListNodes(
        api_pb2.ListNodesRequest(cluster=big, page_token=t), CONTEXT))
    assert len(cut) == 2 and reads.MAX_PAGE_BYTES < 4 * 1_200_000

    await Txn().put(keys.service(unique, "a", "x"), b"\xff not a record").commit(world.etcd)
    request = api_pb2.ListServicesRequest(cluster=unique, application="a")
    damaged = await outcome(world.cached.services.ListServices(request, CONTEXT))
    assert damaged == await outcome(world.direct.services.ListServices(request, CONTEXT))
    assert damaged[1] == grpc.StatusCode.DATA_LOSS and keys.service(unique, "a", "x") in damaged[2]
    with from_cache(world):  # another application's services are still served from the cache
        await world.cached.services.ListServices(api_pb2.ListServicesRequest(cluster=unique, application="b"),
                                                 CONTEXT)

    await Txn().put(keys.app(unique, "b"), b"\xff not an application").commit(world.etcd)
    request_b = api_pb2.ListServicesRequest(cluster=unique, application="b")
    bad_app = await outcome(world.cached.services.ListServices(request_b, CONTEXT))
    assert bad_app == await outcome(world.direct.services.ListServices(request_b, CONTEXT))
    assert bad_app[1] == grpc.StatusCode.DATA_LOSS and keys.app(unique, "b") in bad_app[2]

    await Txn().put(keys.cluster(unique), b"\xff not a cluster").commit(world.etcd)
    request2 = api_pb2.ListNodesRequest(cluster=unique)
    bad_cluster = await outcome(world.cached.nodes.ListNodes(request2, CONTEXT))
    assert bad_cluster == await outcome(world.direct.nodes.ListNodes(request2, CONTEXT))
    assert bad_cluster[1] == grpc.StatusCode.DATA_LOSS


async def test_the_one_list_helper_takes_the_cache_or_etcd_and_counts_from_etcd(world: World, unique: str) -> None:
    """:func:`cached_lists.list_page`, the helper every list servicer calls: the same page from a
    cache reader with the informer (read from the cache) and one without (read from etcd, the
    parent checked); a page by offset or with a total comes from etcd and agrees with them."""
    await seed(world.etcd, unique)
    prefix = keys.containers(unique)

    def entries(state: ClusterState) -> Iterable[tuple[str, pb.Container]] | None:
        return cached_lists.bounded(((keys.container(unique, *k), c) for k, c in state.containers.items()),
                                    len(state.containers))

    async def page(cache: CacheReader, token: str = "", **more: Any) -> cached_lists.Listing[pb.Container]:
        return await cached_lists.list_page(cache, unique, ("cluster", unique), prefix, pb.Container, entries,
                                            page_size=4, page_token=token, **more)

    with from_cache(world):
        cached = await page(world.cached.containers.cache)
    direct = await page(world.direct.containers.cache)
    assert cached.items == direct.items and cached.total == direct.total == 0
    assert token_key(cached.next_page_token) == token_key(direct.next_page_token) != ""
    world.etcd_reads.clear()
    world.spying[0] = True
    try:
        counted = await page(world.cached.containers.cache, with_total=True)
        second = await page(world.cached.containers.cache, offset=4, with_total=True)
    finally:
        world.spying[0] = False
    assert world.etcd_reads, "offset and with_total pages are etcd's"
    assert counted.items == cached.items and counted.total == second.total == 15
    assert second.items == (await page(world.direct.containers.cache, cached.next_page_token)).items
    with pytest.raises(ValueError, match="keep"):
        await page(world.cached.containers.cache, with_total=True, keep=lambda c: True)
    missing = f"{unique}-missing"
    for cache in (world.cached.containers.cache, world.direct.containers.cache):
        with pytest.raises(NotFound):
            await cached_lists.list_page(cache, missing, ("cluster", missing), keys.containers(missing),
                                         pb.Container, entries, page_size=0, page_token="")
