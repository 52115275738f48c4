"""HAProxy's built-in Prometheus exporter on the router's metrics port, and the agent's router
series, against the REAL haproxy binary (no Docker: the backends are small HTTP servers)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from ccs.v1 import resources_pb2 as pb
from nodeagent.metrics import AgentMetrics
from nodeagent.router import ApplyResult, Router, RouterSettings
from nodeagent.router.exporter import exporter_frontend
from tests.conftest import free_port
from tests.integration.metrics_scrape import scrape_until, total
from tests.unit.test_grafana_dashboard import dashboard_series

from .router_helpers import backend, entry, get, needs_haproxy
from .router_helpers import servers as servers  # the fixture

pytestmark = [needs_haproxy, pytest.mark.timeout(120)]


@pytest.fixture
async def metered_router(tmp_path: Path) -> AsyncIterator[tuple[Router, AgentMetrics]]:
    metrics = AgentMetrics()
    r = Router(RouterSettings(state_dir=tmp_path / "router", bind_address="127.0.0.1", port=free_port(),
                              metrics_port=free_port()), metrics=metrics)
    await r.start()
    yield r, metrics
    await r.stop()


def samples(metrics: AgentMetrics, name: str, **labels: str) -> float:
    return metrics.registry.get_sample_value(name, labels) or 0.0


async def test_haproxy_exports_its_counters_and_the_agent_counts_applies(
    metered_router: tuple[Router, AgentMetrics], servers: dict[str, int]
) -> None:
    router, metrics = metered_router
    url = f"http://127.0.0.1:{router.settings.metrics_port}/metrics"
    web = entry("web", "shop.example", backend("web-1", servers["web-1"]))
    assert await router.apply(pb.RoutingTable(cluster="c", version=1, routes=[web])) is ApplyResult.RELOADED
    assert samples(metrics, "ccs_agent_router_reloads_total", outcome="ok") == 1
    assert samples(metrics, "ccs_agent_router_apply_seconds_count", result="reloaded") == 1
    for _ in range(3):
        assert (await get(router.settings.port, "shop.example"))[:2] == (200, "web-1")

    # The route's backend, with the three requests just made (HAProxy counts a response as it
    # forwards it, so the count may trail the client by a moment: scrape until it is there).
    found = await scrape_until(url, "three 2xx responses of the web backend", lambda s: total(
        s, "haproxy_backend_http_responses_total", code="2xx") >= 3)
    assert any(name.startswith("haproxy_process_") for name, _ in found)
    backend_name = next(dict(labels)["proxy"] for name, labels in found
                        if name == "haproxy_backend_http_responses_total" and "web" in dict(labels)["proxy"])
    assert total(found, "haproxy_backend_http_responses_total", proxy=backend_name, code="2xx") == 3
    # The dashboard's router panels read series this HAProxy exports.
    exported = {name for name, _ in found}
    used = dashboard_series("haproxy_")
    assert used and used <= exported, sorted(used - exported)

    # A weight change goes through the runtime API: an apply, no reload.
    web.backends[0].weight = 50
    assert await router.apply(pb.RoutingTable(cluster="c", version=2, routes=[web])) is ApplyResult.WEIGHTS
    assert samples(metrics, "ccs_agent_router_apply_seconds_count", result="weights") == 1
    assert samples(metrics, "ccs_agent_router_reloads_total", outcome="ok") == 1

    # The heartbeat's counters still read (the exporter's frontend has no servers to confuse them).
    stats = await router.collect(node="n1")
    assert [b.container for b in stats.backends] == ["web-1"]

    # Only /metrics is served, and only on loopback.
    status, body, _ = await get(router.settings.metrics_port, "localhost", "/other")
    assert status == 404 and "only /metrics" in body
    assert f"bind 127.0.0.1:{router.settings.metrics_port}" in router.settings.config_path.read_text()


def test_no_exporter_without_a_port(tmp_path: Path) -> None:
    assert exporter_frontend(RouterSettings(state_dir=tmp_path)) == []


@pytest.mark.parametrize("port", [-1, 65536, 9080, 9443])
def test_a_bad_metrics_port_is_refused(tmp_path: Path, port: int) -> None:
    with pytest.raises(ValueError, match="metrics_port: must be in 0-65535 and differ"):
        RouterSettings(state_dir=tmp_path, metrics_port=port)
