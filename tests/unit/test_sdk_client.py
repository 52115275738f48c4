"""The typed client over an in-process server (the transport seam), async and sync."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import grpc.aio
import pytest

import ccs
from ccs.config import Context, upsert_context
from ccs.testing import FakeApi, serve_in_thread, start_server
from ccs.v1 import resources_pb2

TOKEN = "t0ken"
TEMPLATE = "services:\n  web: {image: nginx, deploy: {replicas: 2}}\n  db: {image: postgres}\n"


@pytest.fixture
def fake() -> FakeApi:
    return FakeApi(token=TOKEN, page_size=2)


@pytest.fixture
async def client(fake: FakeApi) -> AsyncIterator[ccs.AsyncClient]:
    server, address = await start_server(fake)
    channel = grpc.aio.insecure_channel(address)
    async with ccs.AsyncClient(address, TOKEN, channel=channel) as c:
        yield c
    await channel.close()
    await server.stop(None)


async def test_list_follows_page_tokens_and_keeps_the_first_revision(
    client: ccs.AsyncClient,
) -> None:
    for i in range(5):
        await client.clusters.create(f"c{i}", description=f"cluster {i}", labels={"i": str(i)})
    listing = await client.clusters.list()
    assert [c.meta.name for c in listing] == ["c0", "c1", "c2", "c3", "c4"]
    assert isinstance(listing, list) and listing.revision > 0
    assert listing[3].meta.labels["i"] == "3"


async def test_application_lifecycle(client: ccs.AsyncClient) -> None:
    await client.clusters.create("prod")
    app = await client.applications.create(
        "prod", "shop", TEMPLATE, env={"TAG": "1"}, files={".env": "A=1\n"}, version="v1"
    )
    assert app.spec.version == "v1" and app.spec.files[".env"] == "A=1\n"
    got = await client.applications.get("prod", "shop")
    assert got.application.meta.name == "shop"
    assert sorted(s.meta.name for s in got.services) == ["db", "web"]
    web = await client.services.scale("prod", "shop", "web", 5)
    assert web.spec.replicas == 5
    assert [s.meta.name for s in await client.services.list("prod", "shop")] == ["db", "web"]
    stopped = await client.applications.stop("prod", "shop")
    assert stopped.spec.desired_state == resources_pb2.DESIRED_STATE_STOPPED
    updated = await client.applications.update("prod", "shop", version="v2", env={"X": "y"})
    assert (updated.spec.version, dict(updated.spec.env)) == ("v2", {"TAG": "1", "X": "y"})
    with pytest.raises(ccs.FailedPrecondition, match=r"still has 1 application\(s\) and 0 node\(s\)"):
        await client.clusters.delete("prod")
    await client.applications.delete("prod", "shop")
    assert list(await client.applications.list("prod")) == []
    await client.clusters.delete("prod")
    with pytest.raises(ccs.NotFound):
        await client.clusters.get("prod")


async def test_dry_run_writes_nothing_and_invalid_template_names_the_field(
    client: ccs.AsyncClient,
) -> None:
    await client.clusters.create("dev")
    await client.applications.create("dev", "a", TEMPLATE, dry_run=True)
    assert list(await client.applications.list("dev")) == []
    with pytest.raises(ccs.InvalidArgument, match=r"services\.web\.image"):
        await client.applications.create("dev", "a", "services: {web: {ports: [80]}}")


async def test_nodes_update_and_conflict_on_stale_version(
    client: ccs.AsyncClient, fake: FakeApi
) -> None:
    await client.clusters.create("edge")
    assert list(await client.nodes.list("edge")) == []
    seeded = fake.add_node("edge", "n1", address="10.0.0.1")
    node = await client.nodes.update(
        "edge", "n1", availability="NODE_AVAILABILITY_DRAIN", labels={"zone": "a"}
    )
    assert node.spec.availability == resources_pb2.NODE_AVAILABILITY_DRAIN
    assert node.meta.labels["zone"] == "a"
    with pytest.raises(ccs.Conflict, match="stale"):
        await client.nodes.update(
            "edge", "n1", labels={"zone": ""},
            resource_version=seeded.meta.resource_version,
        )
    await client.nodes.delete("edge", "n1")
    with pytest.raises(ccs.NotFound):
        await client.nodes.get("edge", "n1")


async def test_a_service_carries_its_containers_addresses(client: ccs.AsyncClient, fake: FakeApi) -> None:
    await client.clusters.create("prod")
    await client.applications.create("prod", "shop", TEMPLATE)
    fake.add_container("prod", "shop", "web", 1, "n1", addresses={"default": "10.128.0.18"})
    fake.set_service_status("prod", "shop", "web", 1, 1)
    web = await client.services.get("prod", "shop", "web")
    assert [(a.container, a.node, a.network, a.address) for a in web.status.addresses] == [
        ("shop-web-1", "n1", "default", "10.128.0.18")]
    [c] = await client.containers.list("prod", application="shop", service="web")
    assert dict(c.status.addresses) == {"default": "10.128.0.18"}


def test_sync_client_wraps_the_async_core(tmp_path: Path) -> None:
    api = FakeApi(token=TOKEN)
    with serve_in_thread(api) as served:
        cfg = tmp_path / "config.yaml"
        upsert_context("fake", Context(server=served.address, token=TOKEN, tls=False), cfg)
        with ccs.Client.from_config(path=cfg) as client:
            created = client.clusters.create("s1")
            assert isinstance(created, resources_pb2.Cluster)
            assert [c.meta.name for c in client.clusters.list()] == ["s1"]
            assert client.clusters.join_token("s1", rotate=True) == "join-s1-1"
            with pytest.raises(ccs.NotFound):
                client.applications.get("s1", "none")
            typed = client.run(client.aio.clusters.get("s1"))
            assert typed.meta.id == created.meta.id
            changes = client.events.watch("s1", from_revision=1, kinds=["cluster"])
            first = next(changes)  # async iterators become blocking ones
            changes.close()
            assert first.events[0].cluster.meta.name == "s1"


async def test_from_config_uses_the_named_context(tmp_path: Path) -> None:
    cfg = tmp_path / "config.yaml"
    upsert_context("a", Context(server="a.example:1"), cfg)
    upsert_context("b", Context(server="b.example:2", token="x"), cfg, make_current=False)
    client = ccs.AsyncClient.from_config("b", cfg)
    assert client.address == "b.example:2"
    await client.close()
    with pytest.raises(ccs.ConfigError, match="'c' not found"):
        ccs.AsyncClient.from_config("c", cfg)
