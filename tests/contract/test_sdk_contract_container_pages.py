"""The contract (fake and real server, see ``test_sdk_contract``) for ``containers.page``: one page
of the containers after an offset, read now, with the count (the web console's containers page)."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

import ccs
from ccs.v1 import api_pb2

from .backends import Backend, deployed, error, raw

pytestmark = [pytest.mark.timeout(60), pytest.mark.etcd]


async def five_containers(client: ccs.AsyncClient, backend: Backend, cluster: str) -> list[str]:
    """The names of five containers of application shop, in the list's order."""
    await deployed(client, cluster)
    await client.services.scale(cluster, "shop", "web", 4)  # web 4 and db 1
    if backend.fake is not None:  # the fake places nothing: seed what the real control plane writes
        for service, slots in (("web", 4), ("db", 1)):
            for slot in range(1, slots + 1):
                backend.fake.add_container(cluster, "shop", service, slot)
    loop = asyncio.get_running_loop()
    end = loop.time() + 30
    while len(found := await client.containers.list(cluster)) != 5:  # no nodes: they stay pending
        assert loop.time() < end, f"{len(found)} containers, not 5"
        await asyncio.sleep(0.2)
    return [c.meta.name for c in found]


async def test_a_page_after_an_offset_with_the_count(client: ccs.AsyncClient, backend: Backend, unique: str) -> None:
    names = await five_containers(client, backend, unique)
    for offset, size, shown in [(0, 2, names[:2]), (2, 2, names[2:4]), (4, 2, names[4:]), (5, 2, []),
                                (9, 2, []), (1, 10, names[1:])]:
        page = await client.containers.page(unique, offset=offset, size=size)
        assert [c.meta.name for c in page.containers] == shown, (offset, size)
        assert page.total == 5 and page.revision > 0
    web = await client.containers.page(unique, application="shop", service="web", offset=1, size=2)
    assert web.total == 4 and [c.service for c in web.containers] == ["web", "web"]
    assert len(await client.containers.list(unique, page_size=2)) == 5  # list() still walks every page


async def test_offset_and_with_total_refuse_what_they_cannot_do(
    client: ccs.AsyncClient, backend: Backend, unique: str
) -> None:
    await five_containers(client, backend, unique)
    t = raw(client, backend)  # past the SDK: page() never sends these

    cases: list[tuple[dict[str, Any], str]] = [
        ({"offset": -1}, "offset: must not be negative"),
        ({"offset": 2, "page_token": "x"}, "offset: not with page_token (the token goes on from where its page ended)"),
        ({"offset": 1, "node": "n1"}, "node: not with offset or with_total (they count keys; a container's node "
                                      "is in its record)"),
        ({"with_total": True, "node": "n1"}, "node: not with offset or with_total (they count keys; a "
                                             "container's node is in its record)"),
    ]
    for fields, message in cases:
        req = api_pb2.ListContainersRequest(cluster=unique, **fields)
        e = await error(t.unary(t.containers.ListContainers, req, api_pb2.ListContainersResponse))
        assert isinstance(e, ccs.InvalidArgument) and e.message == message, (fields, e)


async def test_a_container_is_found_by_its_name_on_the_server(
    client: ccs.AsyncClient, backend: Backend, unique: str
) -> None:
    """``name``: the server matches it, so only that container comes back (the CLI's lookup by
    name read every container of the cluster before), on every page size; with the other
    filters it narrows further; a bad name, or one with offset/with_total, is refused."""
    names = await five_containers(client, backend, unique)
    for size in (0, 1, 2):
        found = await client.containers.list(unique, name=names[3], page_size=size)
        assert [c.meta.name for c in found] == [names[3]], size
    one = await client.containers.list(unique, name=names[3])
    assert list(await client.containers.list(unique, application=one[0].application, name=names[3])) == list(one)
    assert list(await client.containers.list(unique, application="other", name=names[3])) == []
    assert list(await client.containers.list(unique, name="no-such-1-abc")) == []
    t = raw(client, backend)
    cases: list[tuple[dict[str, Any], str]] = [
        ({"name": "a/b"}, "name: 'a/b' is not a container name (like web-1-3f9a2b7c)"),
        ({"name": names[0], "offset": 1}, "name: not with offset or with_total (they count keys; the name is "
                                          "matched in each record)"),
        ({"name": names[0], "with_total": True}, "name: not with offset or with_total (they count keys; the "
                                                 "name is matched in each record)"),
    ]
    for fields, message in cases:
        req = api_pb2.ListContainersRequest(cluster=unique, **fields)
        e = await error(t.unary(t.containers.ListContainers, req, api_pb2.ListContainersResponse))
        assert isinstance(e, ccs.InvalidArgument) and e.message == message, (fields, e)
    page = await t.unary(t.containers.ListContainers,
                         api_pb2.ListContainersRequest(cluster=unique, name=names[4], page_size=1),
                         api_pb2.ListContainersResponse)
    assert list(page.containers) == [] and page.next_page_token  # matched after the cut, as node is
