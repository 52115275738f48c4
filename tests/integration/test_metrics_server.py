"""ccs-server's Prometheus endpoint, scraped over HTTP while real work is done.

A real etcd, a real ``ccs-server`` process with ``--metrics-listen`` on a free port, and one
in-process agent on ``FakeRuntime`` (the hollow-node agent). Deploying an application must move
the RPC counters, the placements, the reconcile passes and the etcd transactions; a service
that fits nowhere is pending with its reason's kind; an update makes a release; the agent's
session is a connected agent and an open stream.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import grpc
import pytest

from ccs.v1 import api_pb2
from tests.conftest import ROOT, ServerProc, free_port, start_etcd, start_server
from tests.integration.grpc_helpers import Stubs, stubs
from tests.integration.metrics_scrape import scrape_text, scrape_until, total, value

pytestmark = [pytest.mark.etcd, pytest.mark.slow]

APPS = "ccs.v1.ApplicationService"
TEMPLATE = """
services:
  web:
    image: local/busybox:1
    command: sleep 3600
    deploy:
      replicas: 2
  big:
    image: local/busybox:1
    command: sleep 3600
    deploy:
      resources:
        reservations:
          cpus: '1000'
"""


@contextlib.asynccontextmanager
async def server_with_node(tmp_path: Path, cluster: str) -> AsyncIterator[tuple[ServerProc, Stubs, str]]:
    from nodeagent.agent import Agent
    from nodeagent.runtime import FakeRuntime

    etcd = start_etcd(tmp_path)
    port = free_port()
    srv = start_server(tmp_path / "state", etcd.url, tmp_path / "config.yaml",
                       extra=["--heartbeat-period", "1", "--metrics-listen", f"127.0.0.1:{port}"])
    api = stubs(srv.address, srv.token)
    agent: Agent | None = None
    task: asyncio.Task[None] | None = None
    try:
        await api.clusters.CreateCluster(api_pb2.CreateClusterRequest(name=cluster), metadata=api.metadata)
        token = (await api.clusters.GetJoinToken(api_pb2.GetJoinTokenRequest(cluster=cluster),
                                                 metadata=api.metadata)).token
        agent = Agent(srv.address, runtime=FakeRuntime(), name="node-1", join_token=token,
                      state_dir=tmp_path / "agent")
        task = asyncio.create_task(agent.run())
        yield srv, api, f"http://127.0.0.1:{port}/metrics"
    finally:
        if agent is not None:
            await agent.stop()
        if task is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(task, 30)
        await api.channel.close()
        srv.stop()
        etcd.stop()


async def log_line(srv: ServerProc, marker: str, timeout: float = 30.0) -> str:
    """The server's first log line holding ``marker``, once written (the GC line comes just after
    "ccs-server listening", which is what start_server waits for)."""
    loop = asyncio.get_running_loop()
    end = loop.time() + timeout
    while True:
        found = [line for line in srv.log_path.read_text().splitlines() if marker in line]
        if found:
            return found[0]
        assert loop.time() < end, f"no log line with {marker} within {timeout} s"
        await asyncio.sleep(0.1)


async def test_deploying_moves_the_server_series(tmp_path: Path, unique: str) -> None:
    async with server_with_node(tmp_path, unique) as (srv, api, url):
        before = await scrape_until(url, "the server leads, the agent is connected, the heap is frozen", lambda s: (
            value(s, "ccs_leader") == 1 and value(s, "ccs_agents_connected") == 1
            and value(s, "ccs_gc_collections_total", generation="2") >= 1))
        assert value(before, "ccs_rpc_streams_open", service="ccs.v1.Dispatcher", method="Session") == 1
        assert value(before, "ccs_placements_total") == 0
        # serve() collected once and froze the heap after the informer's first list, and says so.
        assert value(before, "ccs_gc_seconds_total", generation="2") > 0
        assert value(before, "ccs_event_loop_lag_seconds_count") > 0  # sampled from the start
        assert '"thresholds": [100000, 10, 10]' in await log_line(srv, '"garbage collector"')
        assert value(before, "ccs_rpc_handled_total", service=APPS, method="CreateApplication", code="OK") == 0

        await api.apps.CreateApplication(api_pb2.CreateApplicationRequest(
            cluster=unique, name="shop", template=TEMPLATE), metadata=api.metadata)
        with pytest.raises(grpc.aio.AioRpcError) as refused:
            await api.apps.CreateApplication(api_pb2.CreateApplicationRequest(
                cluster=unique, name="Not A Name", template=TEMPLATE), metadata=api.metadata)
        assert refused.value.code() == grpc.StatusCode.INVALID_ARGUMENT

        after = await scrape_until(url, "web placed and big pending for CPU", lambda s: (
            value(s, "ccs_placements_total") >= 2 and value(s, "ccs_containers_pending", reason="cpu") == 1))
        assert value(after, "ccs_rpc_handled_total", service=APPS, method="CreateApplication", code="OK") == 1
        assert value(after, "ccs_rpc_handled_total", service=APPS, method="CreateApplication",
                     code="INVALID_ARGUMENT") == 1
        assert value(after, "ccs_rpc_handling_seconds_count", service=APPS, method="CreateApplication",
                     code="OK") == 1
        assert value(after, "ccs_placements_total") == 2  # the two web replicas; big fits nowhere
        assert value(after, "ccs_containers_pending", reason="memory") == 0
        assert total(after, "ccs_reconcile_pass_seconds_count") > total(before, "ccs_reconcile_pass_seconds_count")
        assert value(after, "ccs_etcd_txn_seconds_count", outcome="committed") > value(
            before, "ccs_etcd_txn_seconds_count", outcome="committed")
        assert "ccs_etcd_txn_conflicts_total" in scrape_text(url)

        # An update of web's command is a rolling release.
        await api.apps.UpdateApplication(api_pb2.UpdateApplicationRequest(
            cluster=unique, name="shop", template=TEMPLATE.replace("sleep 3600", "sleep 3601", 1)),
            metadata=api.metadata)
        released = await scrape_until(url, "a rolling release", lambda s: total(
            s, "ccs_releases", strategy="rolling") == 1)
        assert total(released, "ccs_releases") == 1
        assert value(released, "ccs_rpc_handled_total", service=APPS, method="UpdateApplication", code="OK") == 1
        assert srv.proc.poll() is None


async def test_metrics_can_be_turned_off(tmp_path: Path) -> None:
    etcd = start_etcd(tmp_path)
    srv = start_server(tmp_path / "state", etcd.url, tmp_path / "config.yaml",
                       extra=["--metrics-listen", "off"])
    try:
        log = srv.log_path.read_text()
        assert '"ccs-server listening"' in log and '"metrics listening"' not in log
    finally:
        srv.stop()
        etcd.stop()


async def test_the_young_gc_threshold_option_reaches_the_process(tmp_path: Path) -> None:
    etcd = start_etcd(tmp_path)
    srv = start_server(tmp_path / "state", etcd.url, tmp_path / "config.yaml",
                       extra=["--metrics-listen", "off", "--gc-young-threshold", "0"])
    try:
        line = await log_line(srv, '"garbage collector"')
        assert '"thresholds": [700, 10, 10]' in line  # 0: CPython's own
        assert '"frozen_objects": ' in line and '"frozen_objects": 0' not in line
    finally:
        srv.stop()
        etcd.stop()


def test_a_metrics_port_that_cannot_be_bound_stops_the_server(tmp_path: Path) -> None:
    etcd = start_etcd(tmp_path)
    try:
        with socket.socket() as taken:
            taken.bind(("127.0.0.1", 0))
            taken.listen()
            where = f"127.0.0.1:{taken.getsockname()[1]}"
            done = subprocess.run(
                [sys.executable, "-m", "controlplane.main", "--listen", f"127.0.0.1:{free_port()}",
                 "--node-listen", f"127.0.0.1:{free_port()}", "--state-dir", str(tmp_path / "s"),
                 "--client-config", str(tmp_path / "c.yaml"), "--etcd", etcd.url, "--log-format", "json",
                 "--metrics-listen", where],
                cwd=ROOT, capture_output=True, text=True, timeout=60, check=False)
        assert done.returncode == 1
        said = done.stderr.strip().splitlines()[-1]
        assert f"ccs-server: cannot listen on {where} (--metrics-listen)" in said, said
    finally:
        etcd.stop()
