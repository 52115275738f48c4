"""ccs-agent's Prometheus endpoint and its HAProxy's exporter, scraped over HTTP from a real agent
process on the root Docker Engine (run under the Docker lock), joined to the session's ccs-server.

Deploying moves the container operation counters (prepare, create, start: ok); a service whose
image exists nowhere makes a Docker API error (the engine's 404 for the image) and a failed
prepare, deterministically (no registry is reachable here). Heartbeats are counted and their age
is exported; the router's HAProxy answers on its metrics port with ``haproxy_`` series, and the
agent's first routing table counts as a router apply.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from ccs.v1 import api_pb2
from ccs.v1 import resources_pb2 as pb
from tests.conftest import ServerProc, free_port
from tests.integration import polling
from tests.integration.agent_process import agent_process, create_cluster, remove_from_engine
from tests.integration.grpc_helpers import call
from tests.integration.metrics_scrape import Samples, scrape, total, value

from .docker_fixtures import TestImages, docker_client, test_image  # noqa: F401

pytestmark = [pytest.mark.etcd, pytest.mark.docker, pytest.mark.slow]

TEMPLATE = """
services:
  web:
    image: local/busybox:1
    command: ["sh", "-c", "trap 'exit 0' TERM; while true; do sleep 1; done"]
  ghost:
    image: local/no-such-image:1
    command: sleep 3600
"""


def wait_scrape(url: str, what: str, check: Callable[[Samples], bool]) -> Samples:
    def probe() -> Samples:
        s = scrape(url)
        return s if check(s) else {}

    return polling.wait_for(what, probe, timeout=90)


@pytest.fixture
def agent(ccs_server: ServerProc, unique: str, tmp_path: Path,
          test_image: TestImages) -> Iterator[tuple[str, str]]:  # noqa: F811
    token = create_cluster(ccs_server, unique)
    metrics, router_metrics = free_port(), free_port()
    try:
        with agent_process(ccs_server.address, token, f"{unique}-n1", tmp_path / "agent", tmp_path / "agent.log",
                           router_port=free_port(), metrics_port=metrics, router_metrics_port=router_metrics):
            polling.wait_for("the node READY", lambda: call(ccs_server, lambda s: s.nodes.GetNode(
                api_pb2.GetNodeRequest(cluster=unique, name=f"{unique}-n1"), metadata=s.metadata,
                timeout=10)).status.state == pb.NODE_STATE_READY, timeout=90)
            yield f"http://127.0.0.1:{metrics}/metrics", f"http://127.0.0.1:{router_metrics}/metrics"
    finally:
        remove_from_engine(unique)


def test_container_operations_docker_errors_and_the_router_exporter(
    agent: tuple[str, str], ccs_server: ServerProc, unique: str
) -> None:
    url, router_url = agent
    before = wait_scrape(url, "a heartbeat answered", lambda s: value(s, "ccs_agent_heartbeats_total",
                                                                        outcome="ok") >= 1)
    assert total(before, "ccs_agent_container_operations_total") == 0
    assert ("ccs_agent_heartbeat_age_seconds", frozenset()) in before  # present, not defaulted to 0
    assert value(before, "ccs_agent_heartbeat_age_seconds") >= 0

    call(ccs_server, lambda s: s.apps.CreateApplication(api_pb2.CreateApplicationRequest(
        cluster=unique, name="shop", template=TEMPLATE), metadata=s.metadata, timeout=30))
    after = wait_scrape(url, "web started and ghost's prepare failed", lambda s: (
        value(s, "ccs_agent_container_operations_total", op="start", outcome="ok") >= 1
        and value(s, "ccs_agent_container_operations_total", op="prepare", outcome="error") >= 1))
    for op in ("prepare", "create", "start"):
        assert value(after, "ccs_agent_container_operations_total", op=op, outcome="ok") >= 1, op
        assert value(after, "ccs_agent_container_operation_seconds_count", op=op, outcome="ok") >= 1, op
    # ghost: the engine answered 404 for its image (then the pull failed: no registry here).
    assert value(after, "ccs_agent_docker_errors_total", kind="not_found") >= 1
    assert total(after, "ccs_agent_router_apply_seconds_count") >= 1

    exported = scrape(router_url)
    assert any(name.startswith("haproxy_") for name, _ in exported)
    assert total(exported, "haproxy_process_start_time_seconds") > 0
