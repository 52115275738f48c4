"""ccs-server as a process: embedded etcd, first-start credentials, SIGTERM, etcd clusters."""

from __future__ import annotations

import asyncio
import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import grpc
import pytest
import yaml

from ccs.v1 import api_pb2
from tests.conftest import free_port, start_etcd, start_server
from tests.integration.grpc_helpers import stubs

pytestmark = [pytest.mark.etcd, pytest.mark.slow]


def etcd_children(state_dir: Path) -> list[int]:
    out = subprocess.run(["pgrep", "-f", f"data-dir {state_dir}/etcd"], capture_output=True, text=True)
    return [int(p) for p in out.stdout.split()]


async def create_and_list(address: str, token: str, name: str) -> list[str]:
    s = stubs(address, token)
    try:
        await s.clusters.CreateCluster(api_pb2.CreateClusterRequest(name=name), metadata=s.metadata)
        resp = await s.clusters.ListClusters(api_pb2.ListClustersRequest(), metadata=s.metadata)
        return [c.meta.name for c in resp.clusters]
    finally:
        await s.channel.close()


async def test_embedded_etcd_first_start_config_and_graceful_stop(tmp_path: Path) -> None:
    state, config = tmp_path / "state", tmp_path / "config.yaml"
    etcd_port = free_port()
    srv = start_server(state, None, config, extra=["--embedded-etcd-port", str(etcd_port)])
    try:
        # First start: an admin token, and a client config whose context works at once.
        cfg = yaml.safe_load(config.read_text())
        ctx = cfg["contexts"][cfg["current-context"]]
        assert ctx["server"] == srv.address and ctx["token"] == srv.token
        assert oct(config.stat().st_mode & 0o777) == "0o600"
        assert await create_and_list(ctx["server"], ctx["token"], "one") == ["one"]
        assert etcd_children(state), "embedded etcd is not running"
    finally:
        code = srv.stop(signal.SIGTERM)
    assert code == 0, srv.log_path.read_text()
    assert not etcd_children(state), "embedded etcd outlived the server"
    logs = [json.loads(line) for line in srv.log_path.read_text().splitlines() if line.startswith("{")]
    assert any(e.get("event") == "embedded etcd stopped" for e in logs)

    # Second start on the same state: data survives, no new token is minted.
    srv2 = start_server(state, None, config, extra=["--embedded-etcd-port", str(etcd_port)])
    try:
        assert srv2.token == srv.token
        s = stubs(srv2.address, srv.token)
        resp = await s.clusters.GetCluster(api_pb2.GetClusterRequest(name="one"), metadata=s.metadata)
        assert resp.meta.name == "one"
        await s.channel.close()
    finally:
        assert srv2.stop() == 0


async def test_sigterm_lets_in_flight_rpcs_finish(tmp_path: Path, etcd, ccs_server) -> None:  # type: ignore[no-untyped-def]
    # A second API server on the same etcd: the admin token already exists there.
    srv = start_server(tmp_path / "state", etcd.url, tmp_path / "c.yaml", expect_token=False)
    assert srv.token == ""
    s = stubs(srv.address, ccs_server.token)
    try:
        await s.clusters.CreateCluster(api_pb2.CreateClusterRequest(name="inflight"), metadata=s.metadata)
        # A watch is an RPC that is in flight until the server ends it.
        call = s.events.Watch(api_pb2.WatchRequest(cluster="inflight"), metadata=s.metadata)
        await asyncio.sleep(0.3)
        t0 = time.monotonic()
        srv.proc.send_signal(signal.SIGTERM)
        with pytest.raises(grpc.aio.AioRpcError):
            await asyncio.wait_for(call.read(), 30)
        code = await asyncio.to_thread(srv.proc.wait, 30)
        assert code == 0
        # the stream was ended by the shutdown, not dropped on the floor at once
        assert time.monotonic() - t0 < 30
        log = srv.log_path.read_text()
        assert "shutting down" in log and '"stopped"' in log
    finally:
        await s.channel.close()
        srv.stop()


async def test_three_member_etcd_survives_losing_one(tmp_path: Path) -> None:
    ports = [(free_port(), free_port()) for _ in range(3)]
    names = [f"m{i}" for i in range(3)]
    initial = ",".join(f"{n}=http://127.0.0.1:{p}" for n, (_, p) in zip(names, ports, strict=True))
    procs: list[subprocess.Popen[bytes]] = []
    for n, (c, p) in zip(names, ports, strict=True):
        log = open(tmp_path / f"{n}.log", "wb")  # noqa: SIM115
        procs.append(subprocess.Popen(
            ["etcd", "--name", n, "--data-dir", str(tmp_path / n),
             "--listen-client-urls", f"http://127.0.0.1:{c}", "--advertise-client-urls", f"http://127.0.0.1:{c}",
             "--listen-peer-urls", f"http://127.0.0.1:{p}", "--initial-advertise-peer-urls", f"http://127.0.0.1:{p}",
             "--initial-cluster", initial, "--initial-cluster-state", "new", "--log-level", "error"],
            stdout=log, stderr=log))
    endpoints = ",".join(f"http://127.0.0.1:{c}" for c, _ in ports)
    srv = start_server(tmp_path / "state", endpoints, tmp_path / "c.yaml")
    try:
        assert "first" in await create_and_list(srv.address, srv.token, "first")
        procs[0].kill()
        procs[0].wait()
        # The remaining two members still have quorum; the server's channel fails over.
        names_after = None
        for _ in range(50):
            try:
                names_after = await create_and_list(srv.address, srv.token, "second")
                break
            except grpc.aio.AioRpcError as e:
                assert e.code() in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.ALREADY_EXISTS)
                if e.code() == grpc.StatusCode.ALREADY_EXISTS:
                    break
                await asyncio.sleep(0.2)
        s = stubs(srv.address, srv.token)
        resp = await s.clusters.ListClusters(api_pb2.ListClustersRequest(), metadata=s.metadata)
        await s.channel.close()
        assert {"first", "second"} <= {c.meta.name for c in resp.clusters}, names_after
    finally:
        srv.stop()
        for proc in procs:
            if proc.poll() is None:
                proc.terminate()
                proc.wait(10)


def test_server_refuses_to_start_without_etcd(tmp_path: Path) -> None:
    port = free_port()
    proc = subprocess.run(
        [sys.executable, "-m", "controlplane.main", "--listen", f"127.0.0.1:{port}", "--state-dir", str(tmp_path),
         "--etcd", "http://127.0.0.1:1", "--etcd-wait", "3", "--http-listen", "127.0.0.1:0", "--client-config", str(tmp_path / "c.yaml")],
        capture_output=True, text=True, timeout=90, cwd=Path(__file__).parents[2],
    )
    assert proc.returncode != 0
    assert "etcd" in proc.stderr and "not ready" in proc.stderr


_ = start_etcd


def _elected(srv) -> bool:  # type: ignore[no-untyped-def]
    return '"elected leader"' in srv.log_path.read_text()


async def test_another_replica_takes_over_when_the_leader_dies(tmp_path: Path) -> None:
    """Two API servers on their own etcd: kill the leader; the survivor leads and reconciles."""
    own = start_etcd(tmp_path, "failover-etcd")
    flags = ["--leader-ttl", "2"]
    a = start_server(tmp_path / "a", own.url, tmp_path / "a.yaml", extra=flags)
    b = start_server(tmp_path / "b", own.url, tmp_path / "b.yaml", extra=flags, expect_token=False)
    token = a.token
    try:
        for _ in range(100):
            if _elected(a) or _elected(b):
                break
            await asyncio.sleep(0.1)
        leaders = [p for p in (a, b) if _elected(p)]
        assert len(leaders) == 1, "exactly one replica must lead"
        leader = leaders[0]
        survivor = b if leader is a else a
        s = stubs(survivor.address, token)
        await s.clusters.CreateCluster(api_pb2.CreateClusterRequest(name="failover"), metadata=s.metadata)
        await s.apps.CreateApplication(api_pb2.CreateApplicationRequest(
            cluster="failover", name="app", template="services:\n  web:\n    image: x\n"), metadata=s.metadata)
        leader.stop(signal.SIGKILL)
        for _ in range(150):  # bounded wait: about the lease TTL plus the retry period
            if _elected(survivor):
                break
            await asyncio.sleep(0.1)
        assert _elected(survivor), survivor.log_path.read_text()[-2000:]
        # The new leader reconciles: scaling makes the missing (pending: no nodes) containers.
        await s.services.ScaleService(api_pb2.ScaleServiceRequest(
            cluster="failover", application="app", name="web", replicas=3), metadata=s.metadata)
        count = 0
        for _ in range(100):
            resp = await s.containers.ListContainers(
                api_pb2.ListContainersRequest(cluster="failover", application="app"), metadata=s.metadata)
            count = len(resp.containers)
            if count == 3:
                break
            await asyncio.sleep(0.1)
        await s.channel.close()
        assert count == 3
    finally:
        a.stop()
        b.stop()
        own.stop()
