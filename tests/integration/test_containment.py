"""A corrupt record is contained to its object: the rest of its cluster still converges.

A real etcd, a real ccs-server process and one in-process agent on ``FakeRuntime`` (the
hollow-node agent: the real agent code, an in-memory engine). Garbage bytes are written
straight into etcd at one service's key, as a disk or an operator with ``etcdctl`` could.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from pathlib import Path

import aetcd
import pytest

from ccs.v1 import api_pb2
from ccs.v1 import resources_pb2 as pb
from controlplane.store import keys
from tests.conftest import ServerProc, start_etcd, start_server
from tests.integration.grpc_helpers import Stubs, stubs
from tests.integration.polling import until

pytestmark = [pytest.mark.etcd, pytest.mark.slow]

TEMPLATE = """
services:
  good:
    image: local/busybox:1
    command: sleep 3600
  broken:
    image: local/busybox:1
    command: sleep 3600
"""
GARBAGE = b"\x00not a protobuf\xff\xff"


async def running(api: Stubs, cluster: str, service: str) -> list[pb.Container]:
    resp = await api.containers.ListContainers(
        api_pb2.ListContainersRequest(cluster=cluster, application="shop", service=service),
        metadata=api.metadata)
    return [c for c in resp.containers if c.desired_state == pb.DESIRED_STATE_RUNNING
            and c.status.state == pb.CONTAINER_STATE_RUNNING]


async def converged(api: Stubs, cluster: str, service: str, replicas: int) -> bool:
    """Exactly ``replicas`` containers, all running, and none left to retire."""
    resp = await api.containers.ListContainers(
        api_pb2.ListContainersRequest(cluster=cluster, application="shop", service=service),
        metadata=api.metadata)
    live = [c for c in resp.containers if c.status.state == pb.CONTAINER_STATE_RUNNING]
    return len(resp.containers) == replicas and len(live) == replicas


async def corrupt_events(api: Stubs, cluster: str) -> list[pb.Event]:
    resp = await api.events.ListEvents(api_pb2.ListEventsRequest(cluster=cluster), metadata=api.metadata)
    return [e for e in resp.events if e.type == "Warning" and e.object == "shop/broken"]


@contextlib.asynccontextmanager
async def server_with_node(tmp_path: Path, cluster: str) -> AsyncIterator[tuple[ServerProc, Stubs]]:
    from nodeagent.agent import Agent
    from nodeagent.runtime import FakeRuntime

    etcd = start_etcd(tmp_path)
    srv = start_server(tmp_path / "state", etcd.url, tmp_path / "config.yaml",
                       extra=["--heartbeat-period", "1"])
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
        yield srv, api
    finally:
        if agent is not None:
            await agent.stop()
        if task is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(task, 30)
        await api.channel.close()
        srv.stop()
        etcd.stop()


async def test_a_corrupt_service_record_does_not_stop_its_cluster(tmp_path: Path, unique: str) -> None:
    async with server_with_node(tmp_path, unique) as (srv, api):
        await api.apps.CreateApplication(api_pb2.CreateApplicationRequest(
            cluster=unique, name="shop", template=TEMPLATE), metadata=api.metadata)
        await until("both services run", lambda: _both(api, unique))
        [broken_before] = await running(api, unique, "broken")

        host, port = srv.etcd_url.removeprefix("http://").split(":")
        client = aetcd.Client(host, int(port))
        key = keys.service(unique, "shop", "broken").encode()
        try:
            good_bytes = (await client.get(key)).value
            await client.put(key, GARBAGE)

            await api.services.ScaleService(api_pb2.ScaleServiceRequest(
                cluster=unique, application="shop", name="good", replicas=3), metadata=api.metadata)
            await until("good scales to 3 next to a corrupt service",
                        lambda: converged(api, unique, "good", 3))
            # More passes: scale again. The corrupt record is reported once, not every pass.
            await api.services.ScaleService(api_pb2.ScaleServiceRequest(
                cluster=unique, application="shop", name="good", replicas=2), metadata=api.metadata)
            await until("good scales to 2", lambda: converged(api, unique, "good", 2))
            [event] = await corrupt_events(api, unique)
            assert event.reason == "Undecodable"
            assert keys.service(unique, "shop", "broken") in event.message
            # The held service's container was left alone (not retired as if it were deleted).
            assert [c.meta.id for c in await running(api, unique, "broken")] == [broken_before.meta.id]
            assert srv.proc.poll() is None, srv.log_path.read_text()

            # Repaired: the service is planned again and scales like any other.
            await client.put(key, good_bytes)
            await api.services.ScaleService(api_pb2.ScaleServiceRequest(
                cluster=unique, application="shop", name="broken", replicas=2), metadata=api.metadata)
            await until("the repaired service scales", lambda: converged(api, unique, "broken", 2))
            assert len(await corrupt_events(api, unique)) == 1

            # Broken again, and the server restarts: the new leader's cache has no good copy
            # of the record. It starts, reports it (once more: a new leader), and its first
            # pass, which wrote that event, retired nothing.
            await client.put(key, GARBAGE)
            await until("reported again", lambda: _events(api, unique, 2))
            assert srv.stop() == 0
            restarted = start_server(srv.state_dir, srv.etcd_url, srv.config_path,
                                     port=int(srv.address.rsplit(":", 1)[1]), expect_token=False,
                                     extra=["--heartbeat-period", "1"])
            try:
                await until("the new leader reports it", lambda: _events(api, unique, 3))
                resp = await api.containers.ListContainers(api_pb2.ListContainersRequest(
                    cluster=unique, application="shop", service="broken"), metadata=api.metadata)
                assert [c.desired_state for c in resp.containers] == [pb.DESIRED_STATE_RUNNING] * 2
                assert restarted.proc.poll() is None, restarted.log_path.read_text()
            finally:
                restarted.stop()
        finally:
            await client.close()


async def _events(api: Stubs, cluster: str, n: int) -> bool:
    return len(await corrupt_events(api, cluster)) >= n


async def _both(api: Stubs, cluster: str) -> bool:
    return await converged(api, cluster, "good", 1) and await converged(api, cluster, "broken", 1)
