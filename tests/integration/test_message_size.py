"""gRPC message sizes set on purpose (issue 12; the figures are in ``ccs/message_size.py``).

- A request past 4 MiB is refused with RESOURCE_EXHAUSTED (by the server when a client sends
  it anyway, by the SDK's own channel before sending), and the server answers afterwards.
- The largest legitimate request (a 1 MiB template, 1 MiB of files and 1 MiB of env) reaches
  the server and gets its reason: too large to store, naming the limit.
- Answers past gRPC's 4 MiB default reach the SDK (every revision of an application with
  large templates) and the agent (the complete assignment set of a node holding 500
  containers of a service with a 10 KB environment); a list page of those containers ends at
  the server's byte budget and the SDK collects every page.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

import grpc
import pytest

from ccs import errors
from ccs.client import AsyncClient
from ccs.message_size import MAX_REQUEST_BYTES
from ccs.v1 import agent_pb2, api_pb2, api_pb2_grpc
from ccs.v1 import resources_pb2 as pb
from controlplane.store.reads import MAX_PAGE_BYTES
from nodeagent.dispatcher_client import CHANNEL_OPTIONS, DispatcherClient
from tests.conftest import ServerProc
from tests.integration.grpc_helpers import channel
from tests.integration.node_link import register_node

pytestmark = [pytest.mark.etcd, pytest.mark.slow, pytest.mark.timeout(300)]
MIB = 1024 * 1024
WEB = "services:\n  web:\n    image: local/busybox:1\n    command: sleep 3600\n"
CONVERGE = 120.0  # a bound on placement, not a speed assertion


def padded(text: str, size: int, tag: str = "") -> str:
    """``text`` plus comment lines up to about ``size`` bytes (cheap to parse, never stored twice)."""
    line = f"# {tag}{'x' * 1000}\n"
    return text + line * ((size - len(text)) // len(line))


@pytest.fixture
async def client(ccs_server: ServerProc) -> AsyncIterator[AsyncClient]:
    c = ccs_server.client(timeout=120)
    yield c
    await c.close()


async def test_a_request_past_the_limit_is_resource_exhausted_and_the_server_answers_after(
    ccs_server: ServerProc, client: AsyncClient, unique: str
) -> None:
    await client.clusters.create(unique)
    template = padded(WEB, 5 * MIB)
    md = (("authorization", f"Bearer {ccs_server.token}"),)
    # A client that sends it anyway: the server refuses it before any handler runs.
    request = api_pb2.CreateApplicationRequest(cluster=unique, name="big", template=template)
    async with channel(ccs_server.address, options=[("grpc.max_send_message_length", -1)]) as ch:
        with pytest.raises(grpc.aio.AioRpcError) as info:
            await api_pb2_grpc.ApplicationServiceStub(ch).CreateApplication(request, metadata=md)
        assert info.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
        assert info.value.details() == (
            f"SERVER: Received message larger than max ({request.ByteSize()} vs. {MAX_REQUEST_BYTES})")
    # The SDK's channel refuses to send it, and says whose limit it is.
    with pytest.raises(errors.MessageTooLarge, match="ccs requests are at most 4 MiB"):
        await client.applications.create(unique, "big", template)
    assert (await client.clusters.get(unique)).meta.name == unique
    assert not await client.applications.list(unique)


async def test_the_largest_legitimate_request_reaches_the_server_and_gets_its_reason(
    client: AsyncClient, unique: str
) -> None:
    await client.clusters.create(unique)
    template = padded(WEB, MIB - 4096)
    files = {".env": padded("", MIB - 4096)}
    env = {"BIG": "x" * (MIB - 4096)}
    with pytest.raises(errors.InvalidArgument) as info:
        await client.applications.create(unique, "big", template, env=env, files=files)
    assert str(info.value).startswith("template: the application (its template, files and env) with its parsed "
                                      "services is too large to store")
    assert not await client.applications.list(unique)


async def test_an_answer_past_4_mib_reaches_the_sdk(ccs_server: ServerProc, client: AsyncClient, unique: str) -> None:
    await client.clusters.create(unique)
    await client.applications.create(unique, "revs", padded(WEB, MIB - 8192, "0"))
    for i in range(1, 5):  # five revisions, each holding a different template of about 1 MiB
        await client.applications.update(unique, "revs", template=padded(WEB, MIB - 8192, str(i)))
    revisions = await client.applications.revisions(unique, "revs")
    assert [r.revision for r in revisions] == [1, 2, 3, 4, 5]
    assert sum(r.ByteSize() for r in revisions) > 4 * MIB
    # gRPC's default receive limit, which the SDK had, refuses this answer.
    md = (("authorization", f"Bearer {ccs_server.token}"),)
    async with channel(ccs_server.address) as ch:
        with pytest.raises(grpc.aio.AioRpcError) as info:
            await api_pb2_grpc.ApplicationServiceStub(ch).ListRevisions(
                api_pb2.ListRevisionsRequest(cluster=unique, name="revs"), metadata=md)
    assert info.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED


@contextlib.asynccontextmanager
async def beating_node(address: str, token: str, name: str) -> AsyncIterator[DispatcherClient]:
    """A registered node kept READY by heartbeats, on the agent's own channel (mutual TLS with
    its node certificate, the agent's channel options)."""
    link = await register_node(address, token, name, "192.0.2.77", capacity=pb.NodeResources(
        cpus=64, memory_bytes=256 << 30))
    async with link.channel:
        agent = DispatcherClient(link.channel)

        async def beat() -> None:
            while True:
                await agent.heartbeat(pb.NodeStatus(), deadline_seconds=10)
                await asyncio.sleep(1)

        task = asyncio.create_task(beat())
        try:
            yield agent
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError, grpc.aio.AioRpcError):
                await task


async def test_a_complete_set_past_4_mib_reaches_the_agent_and_list_pages_stop_at_their_byte_budget(
    ccs_server: ServerProc, client: AsyncClient, unique: str
) -> None:
    replicas = 500
    template = WEB + f'    environment: {{BIG: "{"x" * 10_000}"}}\n    deploy: {{replicas: {replicas}}}\n'
    await client.clusters.create(unique)
    token = await client.clusters.join_token(unique)
    try:
        async with beating_node(ccs_server.address, token, "big-node") as agent:
            await client.applications.create(unique, "fat", template)
            loop = asyncio.get_running_loop()
            end = loop.time() + CONVERGE
            while True:  # every container placed (on the one node there is)
                containers = await client.containers.list(unique, application="fat")
                if len(containers) == replicas and all(c.node == "big-node" for c in containers):
                    break
                assert loop.time() < end, f"{sum(bool(c.node) for c in containers)} of {replicas} placed"
                await asyncio.sleep(0.5)
            assert sum(c.ByteSize() for c in containers) > 4 * MIB
            # One page holds what fits the byte budget; the SDK above followed the tokens.
            md = (("authorization", f"Bearer {ccs_server.token}"),)
            async with channel(ccs_server.address, options=CHANNEL_OPTIONS) as ch:
                page = await api_pb2_grpc.ContainerServiceStub(ch).ListContainers(
                    api_pb2.ListContainersRequest(cluster=unique, application="fat", page_size=1000), metadata=md)
            assert 0 < len(page.containers) < replicas and page.next_page_token
            assert page.ByteSize() < MAX_PAGE_BYTES + 64 * 1024
            # The session opens with the complete set: every container, in one message.
            session = agent.session("test")
            try:
                first = await asyncio.wait_for(anext(aiter(session)), CONVERGE)
            finally:
                session.cancel()  # type: ignore[attr-defined]
            assert first.type == agent_pb2.SessionMessage.TYPE_COMPLETE
            assert len(first.assignments) == replicas and first.ByteSize() > 4 * MIB
    finally:
        await client.clusters.delete(unique, force=True)
