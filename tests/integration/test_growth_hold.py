"""Mixed versions during a rolling upgrade hold a pair's growth, through a real ccs-server on a
real etcd (the pure rule: tests/unit/test_ipam_growth.py).

The test is the node's agent, as in test_subnet_growth.py: it registers, and heartbeats a
status without `agent_features`, as an agent older than further address blocks does. Scaled
past its /28, the application gets no second block: 13 containers are placed and the 14th
stays pending, its message naming the agent to upgrade. The agent "upgrades" (its heartbeat
declares the features): the 14th is placed on a second block. Then an older API replica is
live (its registry record in etcd has no features, as an older ccs-server writes it): scaled
past both blocks, the pair gets no third block while that record exists, and does once it is
gone.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator, Callable

import grpc
import pytest
from aetcd import rpc

from ccs.features import FEATURES
from ccs.v1 import agent_pb2, api_pb2
from ccs.v1 import resources_pb2 as pb
from controlplane.replicas import PREFIX
from controlplane.store.etcd import Etcd
from tests.conftest import ServerProc
from tests.integration.grpc_helpers import Stubs, stubs
from tests.integration.node_link import register_node

pytestmark = pytest.mark.etcd

TEMPLATE = """
services:
  web:
    image: local/busybox:1
    command: sleep 3600
    deploy:
      replicas: 2
"""
CONVERGE = 90.0  # a bound on convergence (a held container is placed by a later pass), not a speed


@pytest.fixture
async def api(ccs_server: ServerProc) -> AsyncIterator[Stubs]:
    s = stubs(ccs_server.address, ccs_server.token)
    yield s
    await s.channel.close()


async def node_status_recorded(api: Stubs, cluster: str, version: str) -> None:
    """Wait until n1's record holds the status its agent sent (version, no features)."""
    loop = asyncio.get_running_loop()
    end = loop.time() + CONVERGE
    while True:
        node = await api.nodes.GetNode(api_pb2.GetNodeRequest(cluster=cluster, name="n1"), metadata=api.metadata)
        if node.status.agent_version == version and node.status.state == pb.NODE_STATE_READY:
            return
        assert loop.time() < end, f"n1's status never became version {version}: {node.status}"
        await asyncio.sleep(0.3)


async def until(api: Stubs, cluster: str, what: str, done: Callable[[list[pb.Container]], bool]) -> list[pb.Container]:
    loop = asyncio.get_running_loop()
    end = loop.time() + CONVERGE
    while True:
        listing = await api.containers.ListContainers(api_pb2.ListContainersRequest(
            cluster=cluster, application="shop", service="web"), metadata=api.metadata)
        containers = list(listing.containers)
        if done(containers):
            return containers
        assert loop.time() < end, f"{what}: {[(c.node, c.status.message) for c in containers]}"
        await asyncio.sleep(0.3)


def placed(containers: list[pb.Container]) -> list[pb.Container]:
    return [c for c in containers if c.node == "n1" and c.subnets.get("default")]


def pending_with(containers: list[pb.Container], text: str) -> list[pb.Container]:
    return [c for c in containers if not c.node and text in c.status.message]


async def test_growth_waits_for_an_older_agent_and_an_older_replica(
    api: Stubs, ccs_server: ServerProc, unique: str
) -> None:
    await api.clusters.CreateCluster(api_pb2.CreateClusterRequest(name=unique), metadata=api.metadata)
    token = (await api.clusters.GetJoinToken(api_pb2.GetJoinTokenRequest(cluster=unique),
                                             metadata=api.metadata)).token
    n1 = await register_node(ccs_server.address, token, "n1", "192.0.2.1")
    status = pb.NodeStatus(address="192.0.2.1", hostname="n1", agent_version="0.0.9",
                           capacity=pb.NodeResources(cpus=4, memory_bytes=8 << 30))

    replicas_seen: set[str] = set()

    async def heartbeat() -> None:  # the node stays READY; its status says what it knows
        while True:
            answer = await n1.dispatcher.Heartbeat(agent_pb2.HeartbeatRequest(status=status))
            replicas_seen.clear()
            replicas_seen.update(r.api_address for r in answer.replicas)  # the server's registry now
            await asyncio.sleep(0.5)

    async def scale(replicas: int) -> None:
        await api.services.ScaleService(api_pb2.ScaleServiceRequest(
            cluster=unique, application="shop", name="web", replicas=replicas), metadata=api.metadata)

    beating = asyncio.create_task(heartbeat())
    etcd = Etcd([ccs_server.etcd_url])
    await etcd.connect()
    old_replica = f"{PREFIX}test-older-{unique}"
    try:
        await node_status_recorded(api, unique, "0.0.9")
        await api.apps.CreateApplication(api_pb2.CreateApplicationRequest(
            cluster=unique, name="shop", template=TEMPLATE), metadata=api.metadata)
        await until(api, unique, "2 placed on the first block", lambda cs: len(placed(cs)) == 2)

        await scale(14)  # a /28 holds 13
        held = "needs another address block, held: the agent on n1 (ccs 0.0.9) predates further address blocks"
        cs = await until(api, unique, "13 placed, 1 held for the agent",
                         lambda cs: len(placed(cs)) == 13 and len(pending_with(cs, held)) == 1)
        assert {c.subnet_index.get("default", 0) for c in placed(cs)} == {0}
        assert pending_with(cs, held)[0].status.message.endswith("upgrade it")

        status.agent_version = "0.1.0"
        status.agent_features[:] = list(FEATURES)  # the agent upgraded
        cs = await until(api, unique, "14 placed once the agent knows further blocks",
                         lambda cs: len(placed(cs)) == 14)
        assert {c.subnet_index.get("default", 0) for c in placed(cs)} == {0, 1}

        # An older API replica is live: its record (what an older ccs-server writes) has no features.
        lease = await etcd.grant_lease(60)
        record = json.dumps({"api": "192.0.2.99:7443", "node": "192.0.2.99:7444"}).encode()
        await etcd.txn([], [rpc.RequestOp(request_put=rpc.PutRequest(key=old_replica.encode(), value=record,
                                                                      lease=lease))])
        loop = asyncio.get_running_loop()
        end = loop.time() + CONVERGE
        while "192.0.2.99:7443" not in replicas_seen:  # the registry read it (a refresh: 1/3 of its TTL)
            assert loop.time() < end, f"the server never listed the older replica: {replicas_seen}"
            await asyncio.sleep(0.2)
        capacity = 13 + await _second_block_room(api, unique)
        await scale(capacity + 1)
        held = "held: API replica 192.0.2.99:7443 predates further address blocks"
        await until(api, unique, f"{capacity} placed, 1 held for the older replica",
                    lambda cs: len(placed(cs)) == capacity and len(pending_with(cs, held)) == 1)
        await etcd.txn([], [rpc.RequestOp(request_delete_range=rpc.DeleteRangeRequest(key=old_replica.encode()))])
        cs = await until(api, unique, "all placed once the older replica is gone",
                         lambda cs: len(placed(cs)) == capacity + 1)
        assert {c.subnet_index.get("default", 0) for c in placed(cs)} == {0, 1, 2}
    finally:
        with contextlib.suppress(Exception):
            await etcd.txn([], [rpc.RequestOp(request_delete_range=rpc.DeleteRangeRequest(key=old_replica.encode()))])
        await etcd.close()
        beating.cancel()
        with contextlib.suppress(asyncio.CancelledError, grpc.aio.AioRpcError):
            await beating
        await n1.close()
        await api.clusters.DeleteCluster(api_pb2.DeleteClusterRequest(name=unique, force=True),
                                         metadata=api.metadata)


async def _second_block_room(api: Stubs, cluster: str) -> int:
    """Container addresses of the pair's second block (its prefix, less the engine's three)."""
    import ipaddress

    listing = await api.containers.ListContainers(api_pb2.ListContainersRequest(
        cluster=cluster, application="shop", service="web"), metadata=api.metadata)
    second = next(c.subnets["default"] for c in listing.containers if c.subnet_index.get("default", 0) == 1)
    return int(ipaddress.IPv4Network(second).num_addresses) - 3
