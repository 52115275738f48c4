"""The agent with its router: a real HAProxy fed by the agent's session, its counters in the
agent's heartbeats (an in-process Dispatcher on the other end, a FakeRuntime for Docker).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import Counter
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from ccs.v1 import resources_pb2 as pb
from nodeagent.router import Router, RouterSettings
from tests.conftest import free_port
from tests.route_certs import TestCA

from .router_helpers import backend, entry, get, https_get, needs_haproxy

pytestmark = [needs_haproxy, pytest.mark.timeout(120)]


class _AgentWithRouter:
    """An Agent (FakeRuntime) with the real router, talking to an in-process Dispatcher that
    records every heartbeat's router stats in arrival order (plaintext: the double is not a TLS
    server; the agent's TLS is tested against the real server in test_node_certs.py)."""

    def __init__(self, stats: list[pb.RouterStats], router: Router, dispatcher: Any) -> None:
        self.stats = stats
        self.router = router
        self.dispatcher = dispatcher

    async def first_collected_after_now(self) -> pb.RouterStats:
        """The first heartbeat whose counters were certainly read after this call.

        The agent sends one heartbeat at a time and collects the next one only after the
        previous one was answered. With k heartbeats received now, the (k+1)-th may have been
        collected before this call and still be in flight; the (k+2)-th was collected after
        the (k+1)-th was answered, so after now. No timing is assumed, only that order."""
        k = len(self.stats)
        await self.dispatcher.until(lambda: len(self.stats) >= k + 2)
        return self.stats[k + 1]


@contextlib.asynccontextmanager
async def agent_with_router(
    tmp_path: Path, table: pb.RoutingTable, certificates: dict[tuple[str, int], bytes] | None = None
) -> AsyncIterator[_AgentWithRouter]:
    """Start the agent, send it ``table`` (with ``certificates`` beside it, as
    SessionMessage.route_certificates), and yield once the router applied it and a heartbeat
    carried stats for it."""
    import grpc.aio

    from ccs.v1 import agent_pb2, agent_pb2_grpc
    from nodeagent.agent import Agent
    from nodeagent.runtime import FakeRuntime

    from ..unit.test_agent_e2e import Dispatcher, running
    from ..unit.test_agent_helpers import complete, container

    stats: list[pb.RouterStats] = []

    class Recording(Dispatcher):
        async def Heartbeat(self, request: Any, context: Any) -> Any:
            if request.HasField("router_stats"):
                stats.append(request.router_stats)
            return await super().Heartbeat(request, context)

    server = grpc.aio.server()
    d = Recording()
    agent_pb2_grpc.add_DispatcherServicer_to_server(d, server)
    grpc_port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    router = Router(RouterSettings(state_dir=tmp_path / "router", bind_address="127.0.0.1", port=free_port(),
                                   https_port=free_port()))
    agent = Agent(f"127.0.0.1:{grpc_port}", insecure=True, runtime=FakeRuntime(), name="node-1", join_token="join-me",
                  address="127.0.0.1", state_dir=tmp_path, status_linger=0.01, router=router)
    script: asyncio.Queue[agent_pb2.SessionMessage] = asyncio.Queue()
    await d.sessions.put(script)
    try:
        async with running(agent):
            msg = complete(1, container("a"))
            msg.routing.CopyFrom(table)
            for (name, version), data in (certificates or {}).items():
                msg.route_certificates.add(kind="secret", name=name, version=version, data=data)
            await script.put(msg)
            await d.until(lambda: any(s.routing_version == table.version and s.backends for s in stats))
            yield _AgentWithRouter(stats, router, d)
        assert router.pid is None  # stopped with the agent
    finally:
        await server.stop(None)


async def test_agent_feeds_the_router_and_reports_its_stats(tmp_path: Path, servers: dict[str, int]) -> None:
    """The Agent applies SessionMessage.routing and sends the router's counters, with the
    applied routing version, in its heartbeats."""
    table = pb.RoutingTable(cluster="c", version=42, routes=[
        entry("web", "agent.example", backend("web-1", servers["web-1"]))])
    async with agent_with_router(tmp_path, table) as a:
        assert a.router.applied_version == 42
        before = (await a.first_collected_after_now()).backends[0].requests
        assert (await get(a.router.settings.port, "agent.example"))[:2] == (200, "web-1")
        last = await a.first_collected_after_now()
        assert last.node == "node-1" and last.routing_version == 42
        assert [b.container for b in last.backends] == ["web-1"]
        assert last.backends[0].requests == before + 1


async def test_agent_serves_https_with_the_certificate_sent_beside_the_table(
    tmp_path: Path, servers: dict[str, int]
) -> None:
    """SessionMessage.route_certificates reaches the router: the route's domain is served over
    HTTPS with that certificate, and its HTTP requests are redirected."""
    ca = TestCA()
    table = pb.RoutingTable(cluster="c", version=7, routes=[
        entry("web", "agent.example", backend("web-1", servers["web-1"]), tls=pb.RouteTLS(secret="crt", version=3))])
    async with agent_with_router(tmp_path, table, {("crt", 3): ca.leaf("agent.example", serial=4242)}) as a:
        https = a.router.settings.https_port
        assert await asyncio.to_thread(https_get, ca.pem, https, "agent.example") == (200, "web-1", 4242)
        assert (await get(a.router.settings.port, "agent.example"))[0] == 308
        assert [p.name for p in a.router.settings.certificate_dir.glob("*.pem")] == ["agent.example.pem"]
    assert list(a.router.settings.certificate_dir.glob("*.pem")) == []  # removed when the router stopped


async def test_heartbeat_counts_exactly_the_requests_served(tmp_path: Path, servers: dict[str, int]) -> None:
    """Canary analysis reads these counters: N requests through the real HAProxy (some of
    them answered 500) must show up as exactly N more requests and exactly that many more
    5xx in the first heartbeat collected after the last response, per container."""
    table = pb.RoutingTable(cluster="c", version=7, routes=[entry(
        "web", "count.example", backend("web-1", servers["web-1"]), backend("web-2", servers["web-2"]))])
    async with agent_with_router(tmp_path, table) as a:
        base = {b.container: b for b in (await a.first_collected_after_now()).backends}
        results = [await get(a.router.settings.port, "count.example", "/fail" if i % 5 == 0 else "/")
                   for i in range(40)]
        served = Counter(body for _, body, _ in results)
        failed = Counter(body for status, body, _ in results if status == 500)
        assert sum(served.values()) == 40 and sum(failed.values()) == 8
        after = {b.container: b for b in (await a.first_collected_after_now()).backends}
        assert {c: after[c].requests - base[c].requests for c in after} == {
            "web-1": served["web-1"], "web-2": served["web-2"]}
        assert {c: after[c].responses_5xx - base[c].responses_5xx for c in after} == {
            "web-1": failed["web-1"], "web-2": failed["web-2"]}
        assert all(b.connection_errors == 0 for b in after.values())


