"""Removing an application removes every key it owns, on a real server and a real etcd.

What legitimately outlives an application: its events (``/ccs/c/{cluster}/events/``) are
keyed by time, not by application, and stay until the janitor prunes them after the
retention period, so ``ccs events`` can still tell what happened to it. Nothing else may.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import grpc
import pytest

from ccs.v1 import api_pb2, api_pb2_grpc
from controlplane.reconcile.writes import Writes
from controlplane.store import keys
from controlplane.store.etcd import Etcd
from controlplane.store.txn import Txn
from tests.integration.grpc_helpers import TEMPLATE, Stubs, deploy, make_cluster

pytestmark = [pytest.mark.etcd, pytest.mark.timeout(180)]
OUTLIVES_THE_APP = ("events/",)


@pytest.fixture
async def store(etcd) -> AsyncIterator[Etcd]:  # type: ignore[no-untyped-def]
    client = Etcd([etcd.url])
    yield client
    await client.close()


async def cluster_keys(store: Etcd, cluster: str) -> set[str]:
    """Every key under the cluster, except those named in ``OUTLIVES_THE_APP``."""
    base = keys.subtree(cluster)
    res = await store.range(base, keys_only=True)
    return {kv.key for kv in res.kvs if not kv.key[len(base):].startswith(OUTLIVES_THE_APP)}


async def update(api: Stubs, cluster: str, **kw: object) -> None:
    req = api_pb2.UpdateApplicationRequest(cluster=cluster, name="shop", **kw)  # type: ignore[arg-type]
    await api.apps.UpdateApplication(req, metadata=api.metadata)


async def wait_gone(api: Stubs, cluster: str) -> None:
    """Until GetApplication says NOT_FOUND (the reconciler finishes a delete with containers)."""
    for _ in range(1200):
        try:
            await api.apps.GetApplication(api_pb2.GetApplicationRequest(cluster=cluster, name="shop"),
                                          metadata=api.metadata)
        except grpc.aio.AioRpcError as e:
            assert e.code() == grpc.StatusCode.NOT_FOUND, e
            return
        await asyncio.sleep(0.05)
    raise AssertionError("the application was never deleted")


async def history(api: Stubs, store: Etcd, cluster: str, template: str) -> None:
    """Create, update twice (each one a release), so revisions and releases exist."""
    await deploy(api, cluster, template=template)
    await update(api, cluster, env={"TAG": "v2"})
    await update(api, cluster, template=template.replace("sleep 3600", "sleep 3601"))
    releases = await api_pb2_grpc.ReleaseServiceStub(api.channel).ListReleases(
        api_pb2.ListReleasesRequest(cluster=cluster, application="shop"), metadata=api.metadata)
    assert len(releases.releases) == 2
    assert await store.count(keys.revisions(cluster, "shop")) == 3


@pytest.mark.parametrize("with_containers", [True, False])
async def test_rm_returns_the_cluster_to_its_keys_before_the_app(
    api: Stubs, store: Etcd, unique: str, with_containers: bool
) -> None:
    """With containers the reconciler finishes the delete; without, the API deletes at once."""
    await make_cluster(api, unique)
    before = await cluster_keys(store, unique)
    if with_containers:  # the reconciler writes the (pending: no node) containers
        await history(api, store, unique, TEMPLATE)
        for _ in range(1200):
            if await store.count(keys.containers(unique, "shop")):
                break
            await asyncio.sleep(0.05)
        assert await store.count(keys.containers(unique, "shop"))
    else:  # no replica: no container ever exists
        zero = TEMPLATE.replace("replicas: 3", "replicas: 0").replace("    command:", "    deploy: {replicas: 0}\n    command:")
        await history(api, store, unique, zero)
        assert not await store.count(keys.containers(unique, "shop"))
    assert await cluster_keys(store, unique) != before
    await api.apps.DeleteApplication(api_pb2.DeleteApplicationRequest(cluster=unique, name="shop"),
                                     metadata=api.metadata)
    await wait_gone(api, unique)
    assert await cluster_keys(store, unique) == before
    # a new application of the same name starts a fresh history
    await deploy(api, unique)
    revisions = await api.apps.ListRevisions(
        api_pb2.ListRevisionsRequest(cluster=unique, name="shop"), metadata=api.metadata)
    assert [r.revision for r in revisions.revisions] == [1]


async def test_deletes_with_prefixes_are_chunked_by_their_operations(store: Etcd, unique: str) -> None:
    """A reconcile pass that finishes many deletes counts each one's prefix deletes against
    etcd's per-transaction limit (60 deletes x 4 operations would be 240 in one)."""
    base = f"/ccs/writes-test/{unique}/"
    keys_to_put: list[str] = []
    writes = Writes()
    for i in range(60):
        prefixes = tuple(f"{base}{kind}/a{i}/" for kind in ("services", "releases", "revisions"))
        keys_to_put += [f"{base}apps/a{i}", *(p + "k" for p in prefixes)]
        writes.delete(f"{base}apps/a{i}", 0, "application", f"a{i}", with_prefixes=prefixes)
    for start in range(0, len(keys_to_put), 100):
        setup = Txn()
        for key in keys_to_put[start:start + 100]:
            setup.put(key, b"x")
        await setup.commit(store)
    assert await store.count(base) == 240
    assert await writes.commit(store) == 60
    assert await store.count(base) == 0
