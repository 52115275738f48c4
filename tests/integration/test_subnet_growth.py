"""A node's share of an application network grows, through a real ccs-server on a real etcd.

One node registers (the test is its agent: it heartbeats, it reports nothing), an application
with 2 containers gets a /28 on it (13 addresses); scaled to 15, the pass gives the pair a
second block in etcd under its own key, every container is placed (none left pending), each on
a block with room and recording the block's index, and the node's network map lists both
blocks as blocks of the one network. Removing the node removes both blocks' keys.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
from collections.abc import AsyncIterator

import grpc
import pytest

from ccs.v1 import agent_pb2, api_pb2
from ccs.v1 import resources_pb2 as pb
from controlplane.store import keys
from controlplane.store.etcd import Etcd
from tests.conftest import ServerProc
from tests.integration.grpc_helpers import Stubs, stubs
from tests.integration.node_link import register_node
from tests.integration.test_network_map import next_map, open_session

pytestmark = pytest.mark.etcd

TEMPLATE = """
services:
  web:
    image: local/busybox:1
    command: sleep 3600
    deploy:
      replicas: 2
"""
CONVERGE = 60.0  # a bound on convergence, not a speed assertion


@pytest.fixture
async def api(ccs_server: ServerProc) -> AsyncIterator[Stubs]:
    s = stubs(ccs_server.address, ccs_server.token)
    yield s
    await s.channel.close()


async def blocks_in_etcd(url: str, cluster: str) -> dict[str, str]:
    etcd = Etcd([url])
    await etcd.connect()
    try:
        out = {}
        for prefix in (keys.subnets(cluster), keys.subnet_blocks(cluster)):
            for kv in (await etcd.range(prefix)).kvs:
                out[kv.key] = pb.SubnetAllocation.FromString(kv.value).subnet
        return out
    finally:
        await etcd.close()


async def placed(api: Stubs, cluster: str, count: int) -> list[pb.Container]:
    loop = asyncio.get_running_loop()
    end = loop.time() + CONVERGE
    while True:
        listing = await api.containers.ListContainers(api_pb2.ListContainersRequest(
            cluster=cluster, application="shop", service="web"), metadata=api.metadata)
        on_node = [c for c in listing.containers if c.node == "n1" and c.subnets.get("default")]
        if len(on_node) == count:
            return on_node
        assert loop.time() < end, f"{len(on_node)} of {count} placed: {[c.status.message for c in listing.containers]}"
        await asyncio.sleep(0.2)


async def test_a_full_pair_gets_a_second_block_and_the_map_lists_both(
    api: Stubs, ccs_server: ServerProc, unique: str
) -> None:
    await api.clusters.CreateCluster(api_pb2.CreateClusterRequest(name=unique), metadata=api.metadata)
    token = (await api.clusters.GetJoinToken(api_pb2.GetJoinTokenRequest(cluster=unique),
                                             metadata=api.metadata)).token
    n1 = await register_node(ccs_server.address, token, "n1", "192.0.2.1")

    async def heartbeat() -> None:  # the node stays READY whatever the server's grace
        while True:
            await n1.dispatcher.Heartbeat(agent_pb2.HeartbeatRequest())
            await asyncio.sleep(1)

    beating = asyncio.create_task(heartbeat())
    session: grpc.aio.UnaryStreamCall | None = None
    try:
        session, _ = await open_session(n1.dispatcher)
        await api.apps.CreateApplication(api_pb2.CreateApplicationRequest(
            cluster=unique, name="shop", template=TEMPLATE), metadata=api.metadata)
        two = await placed(api, unique, 2)
        first = ipaddress.IPv4Network(two[0].subnets["default"])
        assert first.prefixlen == 28
        first_key = keys.subnet(unique, "n1", "shop", "default")
        assert await blocks_in_etcd(ccs_server.etcd_url, unique) == {first_key: str(first)}

        await api.services.ScaleService(api_pb2.ScaleServiceRequest(
            cluster=unique, application="shop", name="web", replicas=15), metadata=api.metadata)
        every = await placed(api, unique, 15)
        stored = await blocks_in_etcd(ccs_server.etcd_url, unique)
        second_key = keys.subnet(unique, "n1", "shop", "default", 1)
        assert set(stored) == {first_key, second_key}
        second = ipaddress.IPv4Network(stored[second_key])
        assert stored[first_key] == str(first) and not second.overlaps(first)
        by_block = {(c.subnets["default"], c.subnet_index.get("default", 0)) for c in every}
        assert by_block == {(str(first), 0), (str(second), 1)}
        assert sum(c.subnets["default"] == str(first) for c in every) == 13  # the /28 full, no more

        grown = await next_map(session, lambda m: len(m.networks) == 1 and len(m.networks[0].blocks) == 2,
                               "shop's network lists both blocks of n1")
        assert sorted((b.node, b.subnet) for b in grown.networks[0].blocks) == sorted(
            [("n1", str(first)), ("n1", str(second))])

        await api.nodes.DeleteNode(api_pb2.DeleteNodeRequest(cluster=unique, name="n1", force=True),
                                   metadata=api.metadata)
        assert await blocks_in_etcd(ccs_server.etcd_url, unique) == {}
    finally:
        if session is not None:
            session.cancel()
        beating.cancel()
        with contextlib.suppress(asyncio.CancelledError, grpc.aio.AioRpcError):
            await beating
        await n1.close()
        await api.clusters.DeleteCluster(api_pb2.DeleteClusterRequest(name=unique, force=True),
                                         metadata=api.metadata)
