"""A corrupt record is a named, contained failure on the API and dispatcher side.

As Kubernetes does for an object it cannot decode (KEP-3926): reading it answers DATA_LOSS
naming the object and its etcd key (never INTERNAL, never the cache's last good copy), a
list holding it fails naming every such key, the CLI exits 11 with that message, and the
application can still be deleted. An agent's status report is not failed by one container
whose record is corrupt.

A real etcd, a real ccs-server process and one in-process agent on ``FakeRuntime``; garbage
is written straight into etcd with aetcd, as a disk or an operator with ``etcdctl`` could.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from pathlib import Path

import aetcd
import grpc
import pytest

from ccs.v1 import api_pb2
from ccs.v1 import resources_pb2 as pb
from controlplane.store import keys
from nodeagent.runtime import FakeRuntime
from tests.conftest import ROOT, ServerProc, start_etcd, start_server
from tests.integration.cli_process import command, environment
from tests.integration.grpc_helpers import Stubs, stubs
from tests.integration.polling import until
from tests.integration.test_containment import GARBAGE, TEMPLATE, converged

pytestmark = [pytest.mark.etcd, pytest.mark.slow]


@contextlib.asynccontextmanager
async def cluster_with_node(
    tmp_path: Path, cluster: str,
) -> AsyncIterator[tuple[ServerProc, Stubs, FakeRuntime, aetcd.Client]]:
    from nodeagent.agent import Agent

    etcd = start_etcd(tmp_path)
    srv = start_server(tmp_path / "state", etcd.url, tmp_path / "config.yaml",
                       extra=["--heartbeat-period", "1"])
    api = stubs(srv.address, srv.token)
    runtime = FakeRuntime()
    host, port = etcd.url.removeprefix("http://").split(":")
    client = aetcd.Client(host, int(port))
    agent: Agent | None = None
    task: asyncio.Task[None] | None = None
    try:
        await api.clusters.CreateCluster(api_pb2.CreateClusterRequest(name=cluster), metadata=api.metadata)
        token = (await api.clusters.GetJoinToken(api_pb2.GetJoinTokenRequest(cluster=cluster),
                                                 metadata=api.metadata)).token
        agent = Agent(srv.address, runtime=runtime, name="node-1", join_token=token,
                      state_dir=tmp_path / "agent")
        task = asyncio.create_task(agent.run())
        yield srv, api, runtime, client
    finally:
        if agent is not None:
            await agent.stop()
        if task is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(task, 30)
        await client.close()
        await api.channel.close()
        srv.stop()
        etcd.stop()


async def _error(call: object) -> grpc.aio.AioRpcError:
    try:
        await call  # type: ignore[misc]
    except grpc.aio.AioRpcError as e:
        return e
    raise AssertionError("the call succeeded")


async def ccs(srv: ServerProc, home: Path, *args: str) -> tuple[int, str, str]:
    """The real CLI in a subprocess (not blocking the loop the in-process agent runs on)."""
    proc = await asyncio.create_subprocess_exec(
        *command("--config", str(srv.config_path), *args),
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE, cwd=ROOT, env=environment(home))
    out, err = await asyncio.wait_for(proc.communicate(), 120)
    assert proc.returncode is not None
    return proc.returncode, out.decode(), err.decode()


async def _deployed(api: Stubs, cluster: str) -> bool:
    return await converged(api, cluster, "good", 1) and await converged(api, cluster, "broken", 1)


async def _app_gone(api: Stubs, cluster: str) -> bool:
    try:
        await api.apps.GetApplication(api_pb2.GetApplicationRequest(cluster=cluster, name="shop"),
                                      metadata=api.metadata)
    except grpc.aio.AioRpcError as e:
        return bool(e.code() == grpc.StatusCode.NOT_FOUND)
    return False


async def test_a_corrupt_service_is_named_on_reads_and_its_application_can_be_deleted(
    tmp_path: Path, unique: str,
) -> None:
    async with cluster_with_node(tmp_path, unique) as (srv, api, _, client):
        await api.apps.CreateApplication(api_pb2.CreateApplicationRequest(
            cluster=unique, name="shop", template=TEMPLATE), metadata=api.metadata)
        await until("both services run", lambda: _deployed(api, unique))
        key = keys.service(unique, "shop", "broken")
        await client.put(key.encode(), GARBAGE)
        # The leader's informer (the cache the gets are served from) has seen the damage once
        # the reconciler reported it: no race on the watch delay.
        await until("the corrupt record is reported", lambda: _reported(api, unique, key))

        # Get: DATA_LOSS naming the object and the key, not the cache's last good copy.
        e = await _error(api.services.GetService(api_pb2.GetServiceRequest(
            cluster=unique, application="shop", name="broken"), metadata=api.metadata))
        assert e.code() == grpc.StatusCode.DATA_LOSS, e.details()
        assert "service 'shop/broken'" in (e.details() or "") and key in (e.details() or "")
        good = await api.services.GetService(api_pb2.GetServiceRequest(
            cluster=unique, application="shop", name="good"), metadata=api.metadata)
        assert good.meta.name == "good"
        e = await _error(api.apps.GetApplication(api_pb2.GetApplicationRequest(
            cluster=unique, name="shop"), metadata=api.metadata))
        assert e.code() == grpc.StatusCode.DATA_LOSS and key in (e.details() or ""), e.details()

        # List: the whole list fails naming the key (no silently shorter list).
        for request in (api_pb2.ListServicesRequest(cluster=unique),
                        api_pb2.ListServicesRequest(cluster=unique, application="shop")):
            e = await _error(api.services.ListServices(request, metadata=api.metadata))
            assert e.code() == grpc.StatusCode.DATA_LOSS and key in (e.details() or ""), e.details()

        # The CLI: one line naming the key, exit 11.
        for args in (("service", "get", "-c", unique, "shop/broken"), ("service", "ls", "-c", unique)):
            code, out, err = await ccs(srv, tmp_path, *args)
            assert code == 11, (args, code, err)
            assert err.startswith("error: ") and key in err and err.count("\n") == 1, err
            assert out == ""

        # Recovery: deleting the application works, and removes everything it owned.
        code, _, err = await ccs(srv, tmp_path, "app", "rm", "-c", unique, "shop")
        assert code == 0, err
        await until("the application is deleted", lambda: _app_gone(api, unique))
        left = (await client.get_prefix(keys.subtree(unique).encode() + b"services/shop/"),
                await client.get_prefix(keys.containers(unique, "shop").encode()))
        assert [list(r) for r in left] == [[], []]
        assert srv.proc.poll() is None, srv.log_path.read_text()


async def test_a_corrupt_application_record_can_be_deleted(tmp_path: Path, unique: str) -> None:
    async with cluster_with_node(tmp_path, unique) as (srv, api, _, client):
        await api.apps.CreateApplication(api_pb2.CreateApplicationRequest(
            cluster=unique, name="shop", template=TEMPLATE), metadata=api.metadata)
        await until("both services run", lambda: _deployed(api, unique))
        key = keys.app(unique, "shop")
        await client.put(key.encode(), GARBAGE)
        e = await _error(api.apps.DeleteApplication(api_pb2.DeleteApplicationRequest(
            cluster=unique, name="shop", resource_version=1), metadata=api.metadata))
        assert e.code() == grpc.StatusCode.ABORTED, e.details()  # a stale version still guards
        await api.apps.DeleteApplication(api_pb2.DeleteApplicationRequest(cluster=unique, name="shop"),
                                         metadata=api.metadata)
        await until("the application is deleted", lambda: _app_gone(api, unique))
        resp = await api.containers.ListContainers(api_pb2.ListContainersRequest(cluster=unique),
                                                   metadata=api.metadata)
        assert list(resp.containers) == []
        assert srv.proc.poll() is None, srv.log_path.read_text()


async def test_a_corrupt_node_record_is_named_and_can_be_removed(tmp_path: Path, unique: str) -> None:
    async with cluster_with_node(tmp_path, unique) as (srv, api, _, client):
        async def registered() -> bool:
            resp = await api.nodes.ListNodes(api_pb2.ListNodesRequest(cluster=unique), metadata=api.metadata)
            return len(resp.nodes) == 1

        await until("the node registers", registered)
        key = keys.node(unique, "node-1")
        await client.put(key.encode(), GARBAGE)
        await until("the corrupt record is reported", lambda: _reported(api, unique, key))
        e = await _error(api.nodes.GetNode(api_pb2.GetNodeRequest(cluster=unique, name="node-1"),
                                           metadata=api.metadata))
        assert e.code() == grpc.StatusCode.DATA_LOSS and "node 'node-1'" in (e.details() or ""), e.details()
        assert key in (e.details() or "")
        code, _, err = await ccs(srv, tmp_path, "node", "rm", "-c", unique, "node-1")
        assert code == 0, err
        assert (await client.get(key.encode())) is None


async def test_a_corrupt_container_record_does_not_fail_the_agents_status_report(
    tmp_path: Path, unique: str,
) -> None:
    template = TEMPLATE.replace("  broken:", '    restart: "no"\n  broken:', 1)
    async with cluster_with_node(tmp_path, unique) as (srv, api, runtime, client):
        await api.apps.CreateApplication(api_pb2.CreateApplicationRequest(
            cluster=unique, name="shop", template=template), metadata=api.metadata)
        await until("both services run", lambda: _deployed(api, unique))
        resp = await api.containers.ListContainers(api_pb2.ListContainersRequest(
            cluster=unique, application="shop"), metadata=api.metadata)
        by_service = {c.service: c for c in resp.containers}
        good, broken = by_service["good"], by_service["broken"]
        key = keys.container(unique, "shop", "broken", broken.meta.name)
        await client.put(key.encode(), GARBAGE)
        await until("the corrupt record is reported", lambda: _reported(api, unique, key))

        # Both exit at once: the agent reports them in one batch, and resends a batch that
        # failed. The corrupt one is dropped; the good one's status lands.
        runtime.crash(broken.status.docker_id, exit_code=7)
        runtime.crash(good.status.docker_id, exit_code=3)

        async def good_exited() -> bool:
            c = await api.containers.GetContainer(api_pb2.GetContainerRequest(
                cluster=unique, application="shop", service="good", name=good.meta.name),
                metadata=api.metadata)
            return bool(c.status.state == pb.CONTAINER_STATE_EXITED and c.status.exit_code == 3)

        await until("the good container's exit is recorded", good_exited)
        e = await _error(api.containers.GetContainer(api_pb2.GetContainerRequest(
            cluster=unique, application="shop", service="broken", name=broken.meta.name),
            metadata=api.metadata))
        assert e.code() == grpc.StatusCode.DATA_LOSS and broken.meta.name in (e.details() or "")
        log = srv.log_path.read_text()
        assert log.count("status dropped: the container record does not decode") >= 1
        assert "internal error" not in log.lower() and "unhandled error" not in log, log[-4000:]


async def _reported(api: Stubs, cluster: str, key: str) -> bool:
    resp = await api.events.ListEvents(api_pb2.ListEventsRequest(cluster=cluster), metadata=api.metadata)
    return any(e.reason == "Undecodable" and key in e.message for e in resp.events)
