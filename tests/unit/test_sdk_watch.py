"""watch(): transparent reconnects with no gap and no duplicate, against a real grpc.aio
server (in process) that drops streams on command or is restarted on the same port."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator, AsyncIterator

import grpc.aio
import pytest

import ccs
from ccs.testing import FakeApi, start_server
from ccs.v1 import api_pb2, resources_pb2

pytestmark = pytest.mark.timeout(60)
TEMPLATE = "services: {web: {image: nginx}, db: {image: postgres}}\n"


@pytest.fixture
def fake() -> FakeApi:
    api = FakeApi(token=None)
    api.commit([(("cluster", "c"), resources_pb2.Cluster(meta=resources_pb2.Meta(name="c")))])
    return api


@pytest.fixture
async def client(fake: FakeApi) -> AsyncIterator[ccs.AsyncClient]:
    server, address = await start_server(fake)
    async with ccs.AsyncClient(address, tls=False) as c:
        yield c
    await server.stop(None)


def watch(
    client: ccs.AsyncClient, from_revision: int = 0, kinds: tuple[str, ...] = (),
    max_retries: int | None = None,
) -> AsyncGenerator[api_pb2.WatchResponse, None]:
    """Cluster "c", with a fast retry so tests do not wait on backoff."""
    return client.events.watch(
        "c", from_revision, kinds, max_retries=max_retries, retry_initial=0.001, retry_max=0.01
    )


async def take(it: AsyncIterator[api_pb2.WatchResponse], n: int) -> list[api_pb2.WatchResponse]:
    out = []
    async for resp in it:
        out.append(resp)
        if len(out) == n:
            break
    return out


async def test_resumes_after_each_drop_without_gap_or_duplicate(
    client: ccs.AsyncClient, fake: FakeApi
) -> None:
    start = fake.revision + 1
    revs = [fake.add_event("c", "node", f"n{i}", "Joined", "hello") for i in range(6)]
    fake.watch_faults = [2, 1, 0, 2]  # four drops, one before the stream sent anything
    w = watch(client, start)
    got = await take(w, 6)
    await w.aclose()
    assert [r.revision for r in got] == revs
    assert [r.events[0].event.object for r in got] == [f"n{i}" for i in range(6)]
    froms = [r.from_revision for r in fake.watch_requests]
    assert froms == [start, revs[2], revs[3], revs[3], revs[5]]


async def test_one_transaction_arrives_as_one_response(
    client: ccs.AsyncClient, fake: FakeApi
) -> None:
    start = fake.revision + 1
    await client.applications.create("c", "shop", TEMPLATE)  # app + 2 services at one revision
    fake.watch_faults = [1]
    w = watch(client, start, kinds=("application", "service"))
    first = await anext(w)
    await client.services.scale("c", "shop", "web", 3)
    second = await anext(w)
    await w.aclose()
    names = sorted((e.kind, getattr(e, e.kind).meta.name) for e in first.events)
    assert names == [("application", "shop"), ("service", "db"), ("service", "web")]
    assert all(e.revision == first.revision for e in first.events)
    assert second.revision > first.revision
    assert [e.service.spec.replicas for e in second.events] == [3]
    assert fake.watch_requests[1].from_revision == first.revision + 1


async def test_from_now_is_pinned_so_a_change_during_a_drop_is_not_lost(
    client: ccs.AsyncClient, fake: FakeApi
) -> None:
    fake.add_event("c", "node", "old", "Joined", "before the watch")
    now = fake.revision
    fake.watch_faults = [0]  # the first stream drops as soon as it has something to send
    w = watch(client, kinds=("event",))
    pending = asyncio.ensure_future(anext(w))
    while not fake.watch_requests:  # noqa: ASYNC110 (wait until the first stream is open and idle)
        await asyncio.sleep(0.01)
    fake.add_event("c", "application", "x", "Created", "during the drop")
    first = await pending
    await w.aclose()
    assert [r.from_revision for r in fake.watch_requests] == [now + 1, now + 1]
    assert (first.revision, first.events[0].event.reason) == (now + 1, "Created")


async def test_compacted_revision_raises_out_of_range(client: ccs.AsyncClient, fake: FakeApi) -> None:
    fake.compacted = fake.revision
    with pytest.raises(ccs.OutOfRange, match="compacted"):
        await take(watch(client, 1), 1)


async def test_survives_a_server_restart_on_the_same_port(fake: FakeApi) -> None:
    server, address = await start_server(fake)
    start = fake.revision + 1
    fake.add_event("c", "node", "a", "Joined", "first")
    async with ccs.AsyncClient(address, tls=False) as client:
        w = watch(client, start, kinds=("event",))
        first = await anext(w)
        await server.stop(None)
        fake.add_event("c", "node", "b", "Joined", "while the server was down")
        server, _ = await start_server(fake, address)
        second = await anext(w)
        await w.aclose()
    await server.stop(None)
    assert (first.events[0].event.object, second.events[0].event.object) == ("a", "b")
    assert second.revision == first.revision + 1


async def test_gives_up_after_max_retries_when_nothing_answers() -> None:
    channel = grpc.aio.insecure_channel("127.0.0.1:1")
    async with ccs.AsyncClient("127.0.0.1:1", channel=channel) as client:
        with pytest.raises(ccs.Unavailable):
            await take(watch(client, 5, max_retries=2), 1)
    await channel.close()
