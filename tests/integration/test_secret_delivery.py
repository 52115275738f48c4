"""Only the node of a container that mounts a secret receives its value (issue 12): two nodes
played with raw gRPC on a real ccs-server and etcd (the agent's own TLS code path, no agent)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import grpc
import pytest

from ccs.v1 import agent_pb2, api_pb2, api_pb2_grpc
from tests.conftest import ServerProc
from tests.integration.grpc_helpers import Stubs, stubs
from tests.integration.node_link import NodeLink, register_node
from tests.integration.test_network_map import open_session

pytestmark = [pytest.mark.etcd, pytest.mark.timeout(120)]

VALUE = b"only-for-n1-3c9d"
CONVERGE = 60.0  # a bound on convergence, not a speed assertion


def template(node: str, secret: bool) -> str:
    return f"""
services:
  web:
    image: local/busybox:1
    deploy: {{placement: {{constraints: ["node.hostname=={node}"]}}}}
""" + ("    secrets: [db]\nsecrets:\n  db: {external: true}\n" if secret else "")


@pytest.fixture
async def api(ccs_server: ServerProc) -> AsyncIterator[Stubs]:
    s = stubs(ccs_server.address, ccs_server.token)
    yield s
    await s.channel.close()


async def until(session: grpc.aio.UnaryStreamCall, seen: list[agent_pb2.SessionMessage], app: str
                ) -> agent_pb2.Assignment:
    """Read ``session`` (keeping every message in ``seen``) until it assigns a container of ``app``."""
    async def read() -> agent_pb2.Assignment:
        while True:
            msg = await session.read()
            assert isinstance(msg, agent_pb2.SessionMessage), "the session ended"
            seen.append(msg)
            for a in msg.assignments:
                if a.container.application == app and a.action == agent_pb2.Assignment.ACTION_UPDATE:
                    return a

    return await asyncio.wait_for(read(), CONVERGE)


async def test_a_secret_goes_only_to_the_node_of_the_container_that_mounts_it(
    api: Stubs, ccs_server: ServerProc, unique: str
) -> None:
    await api.clusters.CreateCluster(api_pb2.CreateClusterRequest(name=unique), metadata=api.metadata)
    token = (await api.clusters.GetJoinToken(api_pb2.GetJoinTokenRequest(cluster=unique),
                                             metadata=api.metadata)).token
    nodes: list[NodeLink] = [await register_node(ccs_server.address, token, n) for n in ("n1", "n2")]

    async def heartbeat() -> None:
        while True:
            for node in nodes:
                await node.dispatcher.Heartbeat(agent_pb2.HeartbeatRequest())
            await asyncio.sleep(1)

    beating = asyncio.create_task(heartbeat())
    sessions: list[grpc.aio.UnaryStreamCall] = []
    try:
        (s1, c1), (s2, c2) = [await open_session(n.dispatcher) for n in nodes]
        sessions += [s1, s2]
        seen1, seen2 = [c1], [c2]
        secrets = api_pb2_grpc.SecretServiceStub(api.channel)
        await secrets.CreateSecret(api_pb2.CreateSecretRequest(cluster=unique, name="db", data=VALUE),
                                   metadata=api.metadata)
        await api.apps.CreateApplication(api_pb2.CreateApplicationRequest(
            cluster=unique, name="shop", template=template("n1", secret=True)), metadata=api.metadata)
        got = await until(s1, seen1, "shop")
        assert [(f.kind, f.name, f.version, f.data) for f in got.files] == [("secret", "db", 1, VALUE)]
        assert VALUE not in got.container.SerializeToString()  # the spec names the version only
        # n2's stream is ordered like etcd: once it carries a later application, everything
        # before it has been sent, and none of it held the value.
        await api.apps.CreateApplication(api_pb2.CreateApplicationRequest(
            cluster=unique, name="probe", template=template("n2", secret=False)), metadata=api.metadata)
        await until(s2, seen2, "probe")
        assert all(VALUE not in m.SerializeToString() for m in seen2)
        assert not [a for m in seen2 for a in m.assignments if a.container.application == "shop"]
    finally:
        for s in sessions:
            s.cancel()
        beating.cancel()
        for n in nodes:
            await n.close()
