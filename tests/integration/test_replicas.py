"""API replicas advertise themselves (issue 12, "Control plane availability"): two real
``ccs-server`` processes on an etcd of their own. The join token names both, a node's Register and
Heartbeat answers name both with their node ports, a node certificate issued by one is accepted
on the other's node port (they share the CA in etcd), and a SIGKILLed replica drops out of the
list once its lease expires (the list is read from etcd, so no timing is asserted: the test waits
for it, bounded)."""

from __future__ import annotations

import asyncio
import signal
from collections.abc import Iterator
from pathlib import Path

import pytest

from ccs.join_token import parse
from ccs.v1 import agent_pb2, agent_pb2_grpc, api_pb2
from controlplane.replicas import advertised_host, parse_record, record_features
from nodeagent import node_tls
from tests.conftest import ServerProc, start_etcd, start_server
from tests.integration.grpc_helpers import stubs
from tests.integration.node_link import register_node, status

pytestmark = [pytest.mark.etcd, pytest.mark.timeout(180)]


@pytest.fixture
def two(tmp_path: Path) -> Iterator[tuple[ServerProc, ServerProc]]:
    etcd = start_etcd(tmp_path, "replicas-etcd")
    one = two = None
    try:
        one = start_server(tmp_path / "a", etcd.url, tmp_path / "a.yaml", extra=["--no-reconcilers"])
        two = start_server(tmp_path / "b", etcd.url, tmp_path / "b.yaml", extra=["--no-reconcilers"],
                           expect_token=False)
        two.token = one.token
        yield one, two
    finally:
        for s in (one, two):
            if s is not None:
                s.stop(signal.SIGKILL)
        etcd.stop()


async def join_token(server: ServerProc, cluster: str, create: bool = False) -> str:
    s = stubs(server.address, server.token)
    try:
        if create:
            await s.clusters.CreateCluster(api_pb2.CreateClusterRequest(name=cluster), metadata=s.metadata)
        resp = await s.clusters.GetJoinToken(api_pb2.GetJoinTokenRequest(cluster=cluster), metadata=s.metadata)
        return str(resp.token)
    finally:
        await s.channel.close()


async def test_replicas_are_named_to_agents_and_tokens_and_a_dead_one_drops_out(
    two: tuple[ServerProc, ServerProc], unique: str
) -> None:
    a, b = two
    token = await join_token(a, unique, create=True)
    both = tuple(sorted([a.address, b.address]))
    assert parse(token).servers == both
    link = await register_node(a.address, token, "n1")
    try:
        named = {r.api_address: r.node_address for r in link.registered.replicas}
        assert named == {a.address: f"127.0.0.1:{a.node_port}", b.address: f"127.0.0.1:{b.node_port}"}
        answer = await link.dispatcher.Heartbeat(agent_pb2.HeartbeatRequest(status=status("n1")), timeout=10)
        assert {r.api_address: r.node_address for r in answer.replicas} == named
        # B accepts the certificate A issued: the replicas share the CA in etcd.
        on_b = node_tls.node_channel_at(named[b.address], link.identity)
        try:
            answer_b = await agent_pb2_grpc.DispatcherStub(on_b).Heartbeat(
                agent_pb2.HeartbeatRequest(status=status("n1")), timeout=10)
            assert {r.api_address for r in answer_b.replicas} == set(both)
        finally:
            await on_b.close()
    finally:
        await link.close()

    a.stop(signal.SIGKILL)
    for _ in range(120):  # bounded: A's lease (10 s) expires, then B's next refresh drops it
        if parse(await join_token(b, unique)).servers == (b.address,):
            break
        await asyncio.sleep(0.5)
    assert parse(await join_token(b, unique)).servers == (b.address,)


def test_the_advertised_host_and_records() -> None:
    assert advertised_host("0.0.0.0:7443", ["ccs.example"], ["10.0.0.5"]) == "ccs.example"
    assert advertised_host("10.1.1.1:7443", [], ["10.0.0.5"]) == "10.1.1.1"
    assert advertised_host("0.0.0.0:7443", [], ["127.0.0.1", "10.0.0.5"]) == "10.0.0.5"
    assert advertised_host("[::]:7443", [], ["127.0.0.1"]) == "127.0.0.1"
    assert parse_record(b'{"api": "a:1", "node": "a:2"}') == agent_pb2.Replica(api_address="a:1", node_address="a:2")
    assert parse_record(b"garbage") is None and parse_record(b'{"api": ""}') is None
    # An older replica's record has no features: it predates every one (ccs.features).
    assert record_features(b'{"api": "a:1", "node": "a:2"}') == ()
    assert record_features(b'{"api": "a:1", "features": ["subnet-growth", 3]}') == ("subnet-growth",)
    assert record_features(b"garbage") == record_features(b"[1]") == ()
