"""The gRPC API of a real ccs-server process on a real etcd: recorded events and the Watch
stream (resume without gap or duplicate, compaction, deletes)."""

from __future__ import annotations

import asyncio

import grpc
import pytest

from ccs.v1 import api_pb2
from tests.integration.grpc_helpers import Stubs, code_of, deploy, make_cluster

pytestmark = pytest.mark.etcd


# ---------------------------------------------------------------- events and watch

async def test_events_are_recorded(api: Stubs, unique: str) -> None:
    await make_cluster(api, unique)
    await deploy(api, unique)
    resp = await api.events.ListEvents(api_pb2.ListEventsRequest(cluster=unique), metadata=api.metadata)
    reasons = [(e.kind, e.reason) for e in resp.events]
    assert ("cluster", "Created") in reasons and ("application", "Created") in reasons


async def test_the_reconciler_tells_why_it_created_a_container(api: Stubs, unique: str) -> None:
    await make_cluster(api, unique)
    await deploy(api, unique)  # no nodes: db's container is created, and stays pending
    req = api_pb2.ListContainersRequest(cluster=unique, application="shop", service="db")
    for _ in range(100):  # a bound against hanging, not a timing assertion
        db = (await api.containers.ListContainers(req, metadata=api.metadata)).containers
        if db:
            break
        await asyncio.sleep(0.05)
    [container] = db
    resp = await api.events.ListEvents(api_pb2.ListEventsRequest(cluster=unique), metadata=api.metadata)
    told = [(e.type, e.reason, e.message) for e in resp.events
            if e.kind == "container" and e.object == f"shop/db/{container.meta.name}"]
    # Written in the transaction that created the record: there once the record is.
    assert told == [("Normal", "Created", "slot 1 of 1 is missing")]


async def test_watch_resumes_with_no_gap_and_no_duplicate(api: Stubs, unique: str) -> None:
    await make_cluster(api, unique)
    listed = await api.apps.ListApplications(
        api_pb2.ListApplicationsRequest(cluster=unique), metadata=api.metadata
    )
    start = listed.revision + 1
    for name in ("a1", "a2", "a3"):
        await deploy(api, unique, name=name)

    async def read(from_rev: int, responses: int) -> list[tuple[int, str, str]]:
        out = []
        call = api.events.Watch(api_pb2.WatchRequest(cluster=unique, from_revision=from_rev,
                                                     kinds=["application", "service"]),
                                metadata=api.metadata)
        async for resp in call:
            out += [(resp.revision, ev.kind, getattr(ev, ev.kind).meta.name) for ev in resp.events]
            responses -= 1
            if responses == 0:
                call.cancel()
                break
        return out

    # History below the current revision is immutable, so two reads from the same start see
    # the same sequence even while reconcilers keep writing statuses.
    everything = await asyncio.wait_for(read(start, 3), 10)
    first_deploy = [(k, n) for r, k, n in everything if r == everything[0][0]]
    assert sorted(first_deploy) == [("application", "a1"), ("service", "db"), ("service", "web")]
    first = await asyncio.wait_for(read(start, 1), 10)  # then the client disconnects
    rest = await asyncio.wait_for(read(first[-1][0] + 1, 2), 10)
    assert first + rest == everything


async def test_watch_of_compacted_revision_says_re_list(api: Stubs, unique: str, etcd) -> None:  # type: ignore[no-untyped-def]
    from controlplane.store.etcd import Etcd

    await make_cluster(api, unique)
    await deploy(api, unique, name="old")
    client = Etcd([etcd.url])
    _, rev = await client.get_with_revision("/x")
    await client.compact(rev)
    await client.close()
    call = api.events.Watch(api_pb2.WatchRequest(cluster=unique, from_revision=2), metadata=api.metadata)
    code, msg = await code_of(call.read())
    assert code == grpc.StatusCode.OUT_OF_RANGE and "re-list" in msg


async def test_watch_sends_deletes_with_the_last_state(api: Stubs, unique: str) -> None:
    await make_cluster(api, unique)
    app = await deploy(api, unique)
    call = api.events.Watch(api_pb2.WatchRequest(cluster=unique, from_revision=app.meta.resource_version + 1,
                                                 kinds=["application"]), metadata=api.metadata)
    await api.apps.DeleteApplication(api_pb2.DeleteApplicationRequest(cluster=unique, name="shop"),
                                     metadata=api.metadata)
    deleted = None
    while deleted is None:
        resp = await asyncio.wait_for(call.read(), 10)
        deleted = next((e for e in resp.events if e.type == api_pb2.WatchEvent.TYPE_DELETE), None)
    call.cancel()
    assert deleted.application.meta.name == "shop" and deleted.application.cluster == unique
