"""The router against the REAL haproxy binary: routing, weights, reloads, sticky sessions, A/B
headers, stats, restarts, and servers that come and go at runtime (see router_helpers.py for the
small HTTP servers behind it).
"""

from __future__ import annotations

import asyncio
import os
import signal
import threading
import time
from collections import Counter

import pytest

from ccs.v1 import resources_pb2 as pb
from nodeagent.router import ApplyResult, Router

from .router_helpers import backend, entry, get, load_loop, needs_haproxy, split

pytestmark = [needs_haproxy, pytest.mark.timeout(120)]


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
