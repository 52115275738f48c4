"""The network map through a real ccs-server on a real etcd, seen by a hand-driven agent.

Two nodes register with the Dispatcher (raw gRPC over mutual TLS with node certificates, as
agents do: the test is the agent, so it decides when a status is reported). An application
with one container per node is deployed; node 1's session receives a map with the
application's network (both nodes' blocks, the service's name with no address yet); when node
2 reports its container RUNNING at an address inside its block, node 1's session receives the
map again with that address under the service's name. Maps after the complete one come as
deltas, which the test applies with the agent's own ``MapBook``. A report with
an address that is not IPv4 is refused, naming the field, and nothing of it is stored.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
from collections.abc import AsyncIterator, Callable

import grpc
import pytest

from ccs.v1 import agent_pb2, agent_pb2_grpc, api_pb2
from ccs.v1 import resources_pb2 as pb
from nodeagent.network.map_book import MapBook
from tests.conftest import ServerProc
from tests.integration.grpc_helpers import Stubs, stubs
from tests.integration.node_link import register_node

pytestmark = pytest.mark.etcd

TEMPLATE = """
services:
  web:
    image: local/busybox:1
    command: sleep 3600
    networks:
      default:
        aliases: [www]
    deploy:
      mode: global
"""
CONVERGE = 60.0  # a bound on convergence, not a speed assertion


@pytest.fixture
async def api(ccs_server) -> AsyncIterator[Stubs]:  # type: ignore[no-untyped-def]
    s = stubs(ccs_server.address, ccs_server.token)
    yield s
    await s.channel.close()


#: The map each session's "agent" holds (the node links declare network-map-deltas, so the
#: server sends deltas after the complete map): applied as the agent does, by its MapBook.
BOOKS: dict[int, MapBook] = {}


async def next_map(call: grpc.aio.UnaryStreamCall, want: Callable[[agent_pb2.NetworkMap], bool],
                   what: str) -> agent_pb2.NetworkMap:
    """Read the session until the map it holds, each message's map or delta applied, is one
    ``want`` accepts."""
    book = BOOKS.setdefault(id(call), MapBook())

    async def read() -> agent_pb2.NetworkMap:
        while True:
            msg = await call.read()
            assert isinstance(msg, agent_pb2.SessionMessage), "the session ended"
            held = book.apply(msg.network_map) if msg.HasField("network_map") else None
            if held is not None and want(held):
                return held

    try:
        return await asyncio.wait_for(read(), CONVERGE)
    except TimeoutError:
        raise AssertionError(f"no network map where {what} after {CONVERGE}s") from None


async def open_session(dispatcher: agent_pb2_grpc.DispatcherStub
                       ) -> tuple[grpc.aio.UnaryStreamCall, agent_pb2.SessionMessage]:
    """A session and its complete set. The server may not have seen the registration yet (its
    cache follows etcd's watch): NOT_FOUND then, and the agent tries again, as here."""
    loop = asyncio.get_running_loop()
    end = loop.time() + CONVERGE
    while True:
        call = dispatcher.Session(agent_pb2.SessionRequest(agent_version="test"))
        try:
            complete = await call.read()
            BOOKS[id(call)] = book = MapBook()
            book.apply(complete.network_map)
            return call, complete
        except grpc.aio.AioRpcError as e:
            if e.code() != grpc.StatusCode.NOT_FOUND or loop.time() > end:
                raise
        await asyncio.sleep(0.1)


def names(m: agent_pb2.NetworkMap) -> dict[str, list[str]]:
    return {n.name: list(n.addresses) for n in m.networks[0].names} if m.networks else {}


async def test_the_map_arrives_and_follows_reported_addresses(api: Stubs, ccs_server: ServerProc, unique: str) -> None:
    await api.clusters.CreateCluster(api_pb2.CreateClusterRequest(name=unique), metadata=api.metadata)
    token = (await api.clusters.GetJoinToken(api_pb2.GetJoinTokenRequest(cluster=unique),
                                             metadata=api.metadata)).token
    n1 = await register_node(ccs_server.address, token, "n1", "192.0.2.1")
    n2 = await register_node(ccs_server.address, token, "n2", "192.0.2.2")

    async def heartbeat() -> None:  # both nodes stay READY whatever the server's grace
        while True:
            for node in (n1, n2):
                await node.dispatcher.Heartbeat(agent_pb2.HeartbeatRequest())
            await asyncio.sleep(1)

    beating = asyncio.create_task(heartbeat())
    session: grpc.aio.UnaryStreamCall | None = None
    try:
        session, complete = await open_session(n1.dispatcher)
        assert complete.type == agent_pb2.SessionMessage.TYPE_COMPLETE
        assert complete.network_map.version != 0 and list(complete.network_map.networks) == []

        await api.apps.CreateApplication(api_pb2.CreateApplicationRequest(
            cluster=unique, name="shop", template=TEMPLATE), metadata=api.metadata)
        placed = await next_map(session, lambda m: len(m.networks) == 1 and len(m.networks[0].blocks) == 2,
                                "shop's network has a block on both nodes")
        [net] = placed.networks
        assert (net.application, net.network, net.internal) == ("shop", "default", False)
        assert [b.node_address for b in net.blocks if b.node == "n2"] == ["192.0.2.2"]
        assert names(placed) == {"web": [], "www": []}  # nothing ready yet: names, no addresses
        cluster = (await api.clusters.GetCluster(api_pb2.GetClusterRequest(name=unique),
                                                 metadata=api.metadata))
        assert placed.pod_cidr == cluster.pod_cidr

        listing = await api.containers.ListContainers(api_pb2.ListContainersRequest(
            cluster=unique, application="shop", service="web"), metadata=api.metadata)
        [on_n2] = [c for c in listing.containers if c.node == "n2"]
        block = ipaddress.IPv4Network(on_n2.subnets["default"])
        assert [b.subnet for b in net.blocks if b.node == "n2"] == [str(block)]
        address = str(block.network_address + 2)

        bad = agent_pb2.UpdateStatusRequest(updates=[agent_pb2.ContainerStatusUpdate(
            application="shop", service="web", container=on_n2.meta.name,
            status=pb.ContainerStatus(state=pb.CONTAINER_STATE_RUNNING, addresses={"default": "10.0.0.300"}))])
        with pytest.raises(grpc.aio.AioRpcError) as refused:
            await n2.dispatcher.UpdateStatus(bad)
        assert refused.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert "updates[0].status.addresses['default']" in (refused.value.details() or "")

        await n2.dispatcher.UpdateStatus(agent_pb2.UpdateStatusRequest(updates=[agent_pb2.ContainerStatusUpdate(
            application="shop", service="web", container=on_n2.meta.name,
            status=pb.ContainerStatus(state=pb.CONTAINER_STATE_RUNNING, addresses={"default": address}))]))
        answered = await next_map(session, lambda m: names(m).get("web") == [address],
                                  f"web answers {address}")
        assert names(answered) == {"web": [address], "www": [address]}
        assert answered.version != placed.version
    finally:
        if session is not None:
            session.cancel()
        beating.cancel()
        with contextlib.suppress(asyncio.CancelledError, grpc.aio.AioRpcError):
            await beating
        await n1.close()
        await n2.close()
        await api.clusters.DeleteCluster(api_pb2.DeleteClusterRequest(name=unique, force=True),
                                         metadata=api.metadata)


async def test_what_an_agent_reports_it_could_not_put_in_place_is_the_nodes_message(
    api: Stubs, ccs_server: ServerProc, unique: str
) -> None:
    """The agent puts its network fabric's problems in every heartbeat's status message; the
    node record keeps it (cut and NUL-free) until a heartbeat says all is well again."""
    await api.clusters.CreateCluster(api_pb2.CreateClusterRequest(name=unique), metadata=api.metadata)
    token = (await api.clusters.GetJoinToken(api_pb2.GetJoinTokenRequest(cluster=unique),
                                             metadata=api.metadata)).token
    node = await register_node(ccs_server.address, token, "n1", "192.0.2.1")

    async def message_after(text: str) -> str:
        await node.dispatcher.Heartbeat(agent_pb2.HeartbeatRequest(
            status=pb.NodeStatus(address="192.0.2.1", message=text)))
        got = await api.nodes.GetNode(api_pb2.GetNodeRequest(cluster=unique, name="n1"), metadata=api.metadata)
        return str(got.status.message)

    problem = "routes: cannot reach 192.0.2.9 for 10.128.0.16/28"
    assert await message_after(problem) == problem
    assert await message_after("x\0" + "y" * 5000) == ("x" + "y" * 5000)[:1997] + "..."
    assert await message_after("") == ""
