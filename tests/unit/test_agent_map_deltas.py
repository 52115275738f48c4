"""The agent applies network map deltas on the map it holds and gives the fabric the whole map;
a delta that does not chain on the version held ends the session, and the next session's
session names the version it still holds, so the server may open it with a delta on that
(issue 15). In-process Dispatcher of test_agent_e2e."""

from __future__ import annotations

import asyncio
from pathlib import Path

import grpc.aio
import structlog

from ccs.v1 import agent_pb2, agent_pb2_grpc
from nodeagent.agent import Agent
from nodeagent.backoff import Backoff
from nodeagent.network.fabric import NetworkFabric
from nodeagent.runtime import FakeRuntime

from .test_agent_e2e import Dispatcher, running
from .test_agent_helpers import CLUSTER, complete


class MapFabric(NetworkFabric):
    """Records the maps it is given; applies nothing."""

    def __init__(self) -> None:
        super().__init__(resolver=None)
        self.maps: list[agent_pb2.NetworkMap] = []
        self.got = asyncio.Event()

    def submit(self, m: agent_pb2.NetworkMap) -> None:
        self.maps.append(m)
        self.got.set()

    async def apply(self) -> None:
        return None


def net(app: str, *addresses: str) -> agent_pb2.AppNetwork:
    return agent_pb2.AppNetwork(application=app, network="default",
                                names=[agent_pb2.NetworkName(name="web", addresses=list(addresses))])


def with_map(msg: agent_pb2.SessionMessage, version: int, *networks: agent_pb2.AppNetwork, base: int = 0,
             removed: tuple[str, ...] = ()) -> agent_pb2.SessionMessage:
    msg.network_map.CopyFrom(agent_pb2.NetworkMap(
        cluster=CLUSTER, version=version, pod_cidr="10.128.0.0/9", networks=networks, base_version=base,
        removed=[agent_pb2.AppNetwork(application=app, network="default") for app in removed]))
    return msg


def incremental(base: int, version: int) -> agent_pb2.SessionMessage:
    return agent_pb2.SessionMessage(type=agent_pb2.SessionMessage.TYPE_INCREMENTAL, base_version=base, version=version)


async def test_deltas_reach_the_fabric_as_whole_maps_and_a_broken_chain_resyncs(tmp_path: Path) -> None:
    server = grpc.aio.server()
    d = Dispatcher()
    agent_pb2_grpc.add_DispatcherServicer_to_server(d, server)
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    fabric = MapFabric()
    agent = Agent(f"127.0.0.1:{port}", insecure=True, runtime=FakeRuntime(), name="node-1", join_token="join-me",
                  state_dir=tmp_path, status_linger=0.01, network=fabric, reconnect=Backoff(base=0.05, cap=0.2))
    first: asyncio.Queue[agent_pb2.SessionMessage] = asyncio.Queue()
    second: asyncio.Queue[agent_pb2.SessionMessage] = asyncio.Queue()
    await d.sessions.put(first)
    await d.sessions.put(second)

    async def next_map() -> agent_pb2.NetworkMap:
        await asyncio.wait_for(fabric.got.wait(), 20)
        fabric.got.clear()
        return fabric.maps[-1]

    def held(m: agent_pb2.NetworkMap) -> list[tuple[str, list[str]]]:
        return [(n.application, list(n.names[0].addresses)) for n in m.networks]

    try:
        with structlog.testing.capture_logs() as logs:
            async with running(agent):
                await first.put(with_map(complete(1), 5, net("other", "10.128.1.2"), net("shop")))
                assert held(await next_map()) == [("other", ["10.128.1.2"]), ("shop", [])]
                # a delta: shop changed, "api" is new; other untouched
                await first.put(with_map(incremental(1, 2), 6, net("api"), net("shop", "10.128.0.2"), base=5))
                m = await next_map()
                assert m.version == 6 and m.base_version == 0 and list(m.removed) == []
                assert held(m) == [("api", []), ("other", ["10.128.1.2"]), ("shop", ["10.128.0.2"])]
                await first.put(with_map(incremental(2, 3), 7, base=6, removed=("other",)))
                assert held(await next_map()) == [("api", []), ("shop", ["10.128.0.2"])]
                # a delta on a version the agent does not hold (7 is held): no guess, a new session
                await first.put(with_map(incremental(3, 4), 9, net("shop"), base=8))
                await d.until(lambda: d.opened >= 2)
                assert len(fabric.maps) == 3  # the broken delta never reached the fabric
                # each session named the map held: none at first, then 7 (the broken delta left it)
                assert [r.held_map_version for r in d.session_requests] == [0, 7]
                await second.put(with_map(complete(10), 11, net("shop", "10.128.0.3"), base=7, removed=("api",)))
                m = await next_map()
                assert m.version == 11 and held(m) == [("shop", ["10.128.0.3"])]
        broken = [e for e in logs if e["event"] == "disconnected" and e["log_level"] == "warning"]
        assert broken and "network map delta base_version=8" in broken[0]["reason"]
    finally:
        await server.stop(None)
