"""The router against the REAL haproxy binary, with small HTTP servers on 127.0.0.1.

Each backend server answers its own name (and 500 under /fail), with HTTP/1.1 keep-alive so
HAProxy's server-side connection reuse is exercised too. Clients are `http.client` in threads.
"""

from __future__ import annotations

import asyncio
import contextlib
import http.client
import shutil
import socket
import threading
import time
from collections import Counter
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from ccs.v1 import resources_pb2 as pb
from nodeagent.router import ApplyResult, Router, RouterSettings

pytestmark = [
    pytest.mark.skipif(shutil.which("haproxy") is None, reason="haproxy is not installed"),
    pytest.mark.timeout(120),
]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


async def serve_name(name: str) -> asyncio.Server:
    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                path = head.split(b" ", 2)[1].decode()
                status = "500 Internal Server Error" if "/fail" in path else "200 OK"
                body = name.encode()
                writer.write(
                    f"HTTP/1.1 {status}\r\nContent-Length: {len(body)}\r\nContent-Type: text/plain\r\n\r\n".encode()
                    + body
                )
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()

    return await asyncio.start_server(handle, "127.0.0.1", 0)


def port_of(server: asyncio.Server) -> int:
    port: int = server.sockets[0].getsockname()[1]
    return port


def fetch(
    port: int, host: str, path: str = "/", headers: dict[str, str] | None = None
) -> tuple[int, str, dict[str, str]]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        conn.request("GET", path, headers={"Host": host, **(headers or {})})
        r = conn.getresponse()
        return r.status, r.read().decode(), {k.lower(): v for k, v in r.getheaders()}
    finally:
        conn.close()


async def get(port: int, host: str, path: str = "/", **headers: str) -> tuple[int, str, dict[str, str]]:
    return await asyncio.to_thread(fetch, port, host, path, {k.replace("_", "-"): v for k, v in headers.items()})


async def split(port: int, host: str, n: int) -> Counter[str]:
    results = await asyncio.gather(*(get(port, host) for _ in range(n)))
    return Counter(body for status, body, _ in results if status == 200)


def backend(name: str, port: int, weight: int = 100, group: str = "stable") -> pb.RouteBackend:
    return pb.RouteBackend(container=name, node="n1", address="127.0.0.1", port=port, weight=weight, group=group)


def entry(service: str, domain: str, *backends: pb.RouteBackend, path: str = "/", **kw: Any) -> pb.RouteEntry:
    return pb.RouteEntry(application="shop", service=service, domain=domain, path=path, backends=backends, **kw)


@pytest.fixture
async def servers() -> AsyncIterator[dict[str, int]]:
    started = {name: await serve_name(name) for name in ("web-1", "web-2", "api-1", "new-1")}
    yield {name: port_of(s) for name, s in started.items()}
    for s in started.values():
        s.close()


@pytest.fixture
async def router(tmp_path: Path) -> AsyncIterator[Router]:
    r = Router(RouterSettings(state_dir=tmp_path / "router", bind_address="127.0.0.1", port=free_port()))
    await r.start()
    yield r
    await r.stop()


async def test_routing_weights_reload_sticky_ab_and_stats(router: Router, servers: dict[str, int]) -> None:
    port = router.settings.port
    web = entry("web", "shop.example", backend("web-1", servers["web-1"], 256), backend("web-2", servers["web-2"], 0))
    api = entry("api", "shop.example", backend("api-1", servers["api-1"]), path="/api")
    table = pb.RoutingTable(cluster="c", version=1, routes=[web, api])
    assert await router.apply(table) is ApplyResult.RELOADED
    assert router.applied_version == 1

    # Host (port stripped, any case) and path prefix on segment boundaries; unknown host -> 404.
    assert (await get(port, "SHOP.example:9080", "/"))[:2] == (200, "web-1")
    assert (await get(port, "shop.example", "/api/items"))[:2] == (200, "api-1")
    assert (await get(port, "shop.example", "/apix"))[:2] == (200, "web-1")
    assert (await get(port, "other.example", "/"))[0] == 404

    # 100/0 then 50/50 through the runtime API: no reload (the worker pid stays).
    assert await split(port, "shop.example", 50) == Counter({"web-1": 50})
    worker = (await router.api.show_info())["Pid"]
    web.backends[0].weight, web.backends[1].weight = 128, 128
    assert await router.apply(pb.RoutingTable(cluster="c", version=2, routes=[web, api])) is ApplyResult.WEIGHTS
    assert (await router.api.show_info())["Pid"] == worker
    state = {row["srv_name"]: row for row in await router.api.show_servers_state()}
    assert (state["web-1"]["srv_uweight"], state["web-2"]["srv_uweight"]) == ("128", "128")
    counts = await split(port, "shop.example", 200)
    assert sum(counts.values()) == 200
    assert 80 <= counts["web-1"] <= 120 and 80 <= counts["web-2"] <= 120

    # A structural change (a new backend) is a reload; a load loop running meanwhile sees no failure.
    stop = threading.Event()
    outcomes: list[str] = []
    loops = [asyncio.create_task(asyncio.to_thread(load_loop, port, stop, outcomes, keep)) for keep in (True, False)]
    await asyncio.sleep(0.3)
    new = entry("new", "new.example", backend("new-1", servers["new-1"]))
    for version in (3, 4, 5):
        new.path = f"/v{version}"
        result = await router.apply(pb.RoutingTable(cluster="c", version=version, routes=[web, api, new]))
        assert result is ApplyResult.RELOADED
        await asyncio.sleep(0.3)
    stop.set()
    await asyncio.gather(*loops)
    failures = [o for o in outcomes if o not in ("web-1", "web-2")]
    print(f"{len(outcomes)} requests during 3 reloads, failures: {failures[:5]}")
    assert len(outcomes) > 50 and failures == []
    assert (await get(port, "new.example", "/v5/x"))[:2] == (200, "new-1")
    assert (await get(port, "new.example", "/v3"))[0] == 404  # old path gone with the reload

    # Stats: cumulative across the reloads, 5xx counted, mapped back to containers.
    before = {b.container: b for b in (await router.collect(node="n1")).backends}
    assert before["web-1"].requests > 0 and before["web-2"].requests > 0
    for _ in range(4):
        assert (await get(port, "shop.example", "/api/fail"))[0] == 500
    after = await router.collect(node="n1")
    assert after.routing_version == 5 and after.node == "n1"
    stats = {b.container: b for b in after.backends}
    assert stats["api-1"].responses_5xx == before["api-1"].responses_5xx + 4
    assert stats["api-1"].requests >= before["api-1"].requests + 4
    assert stats["web-1"].requests >= before["web-1"].requests
    assert (stats["api-1"].application, stats["api-1"].service) == ("shop", "api")


def load_loop(port: int, stop: threading.Event, outcomes: list[str], keep_alive: bool) -> None:
    conn: http.client.HTTPConnection | None = None
    while not stop.is_set():
        try:
            if conn is None:
                conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
            conn.request("GET", "/", headers={"Host": "shop.example"})
            r = conn.getresponse()
            body = r.read().decode()
            outcomes.append(body if r.status == 200 else f"status {r.status}")
            if not keep_alive or r.getheader("connection", "").lower() == "close":
                conn.close()
                conn = None
        except (OSError, http.client.HTTPException) as exc:
            outcomes.append(f"error {type(exc).__name__}: {exc}")
            if conn is not None:
                conn.close()
            conn = None
    if conn is not None:
        conn.close()


async def test_sticky_cookie_and_ab_header_routing(router: Router, servers: dict[str, int]) -> None:
    port = router.settings.port
    sticky = entry(
        "web", "sticky.example", backend("web-1", servers["web-1"]), backend("web-2", servers["web-2"]),
        session_sticky=True,
    )
    ab = entry(
        "api", "ab.example", backend("api-1", servers["api-1"], 128),
        backend("new-1", servers["new-1"], 128, group="canary"),
        match_header="X-Variant", match_value="beta",
    )
    await router.apply(pb.RoutingTable(cluster="c", version=7, routes=[sticky, ab]))

    status, first, headers = await get(port, "sticky.example")
    assert status == 200 and "CCSSRV=" in headers["set-cookie"]
    cookie = headers["set-cookie"].split(";")[0]
    for _ in range(10):
        assert (await get(port, "sticky.example", Cookie=cookie))[1] == first

    # Draining: the pinned server drops to weight 0 (a weight change, no reload) and even the
    # sticky client moves to the other server — nothing keeps a leaving container busy.
    pid = router.pid
    other = "web-2" if first == "web-1" else "web-1"
    weights = {first: 0, other: 128}
    draining = entry(
        "web", "sticky.example", backend("web-1", servers["web-1"], weights["web-1"]),
        backend("web-2", servers["web-2"], weights["web-2"]), session_sticky=True,
    )
    assert router.unrouted_for(first) is None  # what the agent holds a draining stop on
    result = await router.apply(pb.RoutingTable(cluster="c", version=8, routes=[draining, ab]))
    assert result is ApplyResult.WEIGHTS and router.pid == pid
    for _ in range(10):
        status, body, _ = await get(port, "sticky.example", Cookie=cookie)
        assert (status, body) == (200, other)
    dropped = router.unrouted_for(first)
    assert dropped is not None and 0 <= dropped < 60
    assert router.unrouted_for(other) is None
    assert router.unrouted_for("never-routed-here") == float("inf")
    # and back: weight again, the server takes new clients
    await router.apply(pb.RoutingTable(cluster="c", version=9, routes=[sticky, ab]))
    assert router.unrouted_for(first) is None
    seen = {(await get(port, "sticky.example"))[1] for _ in range(10)}
    assert seen == {"web-1", "web-2"}

    for _ in range(10):
        assert (await get(port, "ab.example", X_Variant="beta"))[1] == "new-1"
        assert (await get(port, "ab.example"))[1] == "api-1"
        assert (await get(port, "ab.example", X_Variant="other"))[1] == "api-1"


async def test_invalid_route_is_skipped_and_haproxy_restarts(router: Router, servers: dict[str, int]) -> None:
    port = router.settings.port
    good = entry("web", "ok.example", backend("web-1", servers["web-1"]))
    bad = entry("web", "bad host", backend("web-2", servers["web-2"]))
    await router.apply(pb.RoutingTable(cluster="c", version=8, routes=[good, bad]))
    assert router.applied is not None
    assert any("routes[1].domain" in p for p in router.applied.problems)
    assert (await get(port, "ok.example"))[1] == "web-1"

    first = router.pid
    assert first is not None
    import os
    import signal

    os.kill(first, signal.SIGKILL)  # the master dies: the supervisor restarts it with the same routes
    for _ in range(200):
        if router.pid not in (None, first) and await router_answers(port):
            break
        await asyncio.sleep(0.05)
    assert router.pid not in (None, first)
    assert (await get(port, "ok.example"))[1] == "web-1"


async def router_answers(port: int) -> bool:
    try:
        return (await get(port, "ok.example"))[0] == 200
    except OSError:
        return False


class _AgentWithRouter:
    """An Agent (FakeRuntime) with the real router, talking to an in-process Dispatcher that
    records every heartbeat's router stats in arrival order."""

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
async def agent_with_router(tmp_path: Path, table: pb.RoutingTable) -> AsyncIterator[_AgentWithRouter]:
    """Start the agent, send it ``table``, and yield once the router applied it and a heartbeat
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
    router = Router(RouterSettings(state_dir=tmp_path / "router", bind_address="127.0.0.1", port=free_port()))
    agent = Agent(f"127.0.0.1:{grpc_port}", runtime=FakeRuntime(), name="node-1", join_token="join-me",
                  address="127.0.0.1", state_dir=tmp_path, status_linger=0.01, router=router)
    script: asyncio.Queue[agent_pb2.SessionMessage] = asyncio.Queue()
    await d.sessions.put(script)
    try:
        async with running(agent):
            msg = complete(1, container("a"))
            msg.routing.CopyFrom(table)
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


async def test_containers_come_and_go_without_a_reload(router: Router, servers: dict[str, int]) -> None:
    """What a rolling update does to a non-sticky route: a container joins, the old one drains
    and leaves, a not-yet-ready one joins at weight 0 and is readied. All through the runtime
    API (`add server`/`del server`): the worker never changes, and a load loop running through
    it sees no failure."""
    port = router.settings.port
    worker: str | None = None

    async def apply(version: int, *backends: pb.RouteBackend) -> ApplyResult:
        table = pb.RoutingTable(cluster="c", version=version, routes=[entry("web", "shop.example", *backends)])
        return await router.apply(table)

    assert await apply(1, backend("web-1", servers["web-1"])) is ApplyResult.RELOADED
    worker = (await router.api.show_info())["Pid"]
    stop = threading.Event()
    outcomes: list[str] = []
    loops = [asyncio.create_task(asyncio.to_thread(load_loop, port, stop, outcomes, keep)) for keep in (True, False)]
    await asyncio.sleep(0.3)

    assert await apply(2, backend("web-1", servers["web-1"]), backend("web-2", servers["web-2"])) is ApplyResult.SERVERS
    counts = await split(port, "shop.example", 40)
    assert counts["web-1"] > 0 and counts["web-2"] > 0
    assert await apply(3, backend("web-1", servers["web-1"], 0), backend("web-2", servers["web-2"])) is ApplyResult.WEIGHTS
    await asyncio.sleep(0.3)
    assert await apply(4, backend("web-2", servers["web-2"])) is ApplyResult.SERVERS
    await asyncio.sleep(0.3)
    assert await apply(5, backend("web-2", servers["web-2"]), backend("new-1", servers["new-1"], 0)) is ApplyResult.SERVERS
    assert await split(port, "shop.example", 20) == Counter({"web-2": 20})  # weight 0: in maintenance
    assert await apply(6, backend("web-2", servers["web-2"]), backend("new-1", servers["new-1"])) is ApplyResult.WEIGHTS
    counts = await split(port, "shop.example", 40)
    assert counts["web-2"] > 0 and counts["new-1"] > 0
    await asyncio.sleep(0.3)
    stop.set()
    await asyncio.gather(*loops)

    failures = [o for o in outcomes if o not in ("web-1", "web-2", "new-1")]
    print(f"{len(outcomes)} requests while servers came and went, failures: {failures[:5]}")
    assert len(outcomes) > 50 and failures == []
    assert (await router.api.show_info())["Pid"] == worker  # not one reload

    async def servers_left() -> set[str]:
        return {row["srv_name"] for row in await router.api.show_servers_state()}

    # web-1 sits in maintenance until HAProxy lets go of its pooled connections (see _reap).
    waited = time.monotonic()
    for _ in range(120):  # a bound against hanging (60 s), not a timing assertion
        if await servers_left() == {"web-2", "new-1"}:
            break
        await asyncio.sleep(0.5)
    print(f"web-1 deleted {time.monotonic() - waited:.1f}s after the load stopped")
    assert await servers_left() == {"web-2", "new-1"}
    assert router.settings.config_path.read_text() == router.applied.text if router.applied else False
    stats = {b.container: b for b in (await router.collect(node="n1")).backends}
    assert stats["web-1"].requests > 0  # the deleted server's requests are still counted
