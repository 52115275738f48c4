"""Node identities against a real ccs-server: join, mutual TLS, revocation, rotation, renewal.

Agents run in-process (``nodeagent.agent.Agent`` on a FakeRuntime: the real registration,
certificate and session code, no Docker); where a test must decide exactly when a call is made
(revocation "at once"), it plays the node with raw gRPC (``node_link``, the agent's own key,
CSR and channel code).
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import json
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import grpc
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.x509.oid import NameOID

import ccs
from ccs.errors import REASON_CERT_REVOKED, reason_of
from ccs.join_token import JoinToken, parse
from ccs.v1 import agent_pb2, agent_pb2_grpc, api_pb2, api_pb2_grpc
from ccs.v1 import resources_pb2 as pb
from controlplane.pki import node_certs
from controlplane.store import keys
from controlplane.store.etcd import Etcd
from nodeagent import node_tls
from nodeagent.agent import Agent
from nodeagent.config import load_identity
from nodeagent.dispatcher_client import AgentError
from nodeagent.runtime import FakeRuntime
from tests.conftest import EtcdProc, ServerProc, free_port, start_etcd, start_server
from tests.integration.grpc_helpers import channel
from tests.integration.node_link import register_node, status

pytestmark = pytest.mark.etcd

WAIT = 60.0  # a bound against hanging, not a speed assertion
TTL = 6  # seconds: renewal at two thirds


async def until(predicate: object, what: str, timeout: float = WAIT) -> None:
    end = time.monotonic() + timeout
    while True:
        value = predicate() if callable(predicate) else predicate
        if asyncio.iscoroutine(value):
            value = await value
        if value:
            return
        assert time.monotonic() < end, f"timed out waiting until {what}"
        await asyncio.sleep(0.1)


async def new_cluster(srv: ServerProc, name: str) -> str:
    async with srv.client() as client:
        await client.clusters.create(name)
        return await client.clusters.join_token(name)


@contextlib.asynccontextmanager
async def running(agent: Agent) -> AsyncIterator[asyncio.Task[None]]:
    task = asyncio.create_task(agent.run())
    try:
        yield task
    finally:
        await agent.stop()
        with contextlib.suppress(AgentError):
            await task


def saved_certificate(state_dir: Path) -> x509.Certificate:
    data = json.loads((state_dir / "identity.json").read_text())
    return x509.load_pem_x509_certificate(data["cert_pem"].encode())


async def code_and_reason(call: object) -> tuple[grpc.StatusCode, str, str]:
    try:
        await call  # type: ignore[misc]
    except grpc.aio.AioRpcError as exc:
        return exc.code(), exc.details() or "", reason_of(exc)
    raise AssertionError("the call succeeded")


# ------------------------------------------------------------------ joining

async def test_an_agent_joins_with_a_csr_and_talks_mutual_tls(ccs_server: ServerProc, unique: str,
                                                               tmp_path: Path) -> None:
    token = await new_cluster(ccs_server, unique)
    agent = Agent(ccs_server.address, runtime=FakeRuntime(), name="n1", join_token=token, state_dir=tmp_path)
    async with running(agent):
        await asyncio.wait_for(agent.connected.wait(), WAIT)
    identity = json.loads((tmp_path / "identity.json").read_text())
    cert = saved_certificate(tmp_path)
    key = serialization.load_pem_private_key(identity["key_pem"].encode(), password=None)
    spki = serialization.PublicFormat.SubjectPublicKeyInfo
    # The certificate is for the key made on the node (the server only ever saw a CSR).
    assert key.public_key().public_bytes(serialization.Encoding.DER, spki) == \
        cert.public_key().public_bytes(serialization.Encoding.DER, spki)
    assert identity["credential"] == ""
    names = {a.oid: a.value for a in cert.subject}
    assert (names[NameOID.COMMON_NAME], names[NameOID.ORGANIZATION_NAME],
            names[NameOID.ORGANIZATIONAL_UNIT_NAME]) == ("n1", unique, "ccs-node")
    assert ccs_server.ca_pem is not None
    cert.verify_directly_issued_by(x509.load_pem_x509_certificate(ccs_server.ca_pem.encode()))
    assert cert.not_valid_after_utc - dt.datetime.now(dt.UTC) > dt.timedelta(days=89)  # the 90-day default
    assert identity["node_port"] == ccs_server.node_port


async def test_node_calls_need_the_node_certificate(ccs_server: ServerProc, unique: str) -> None:
    token = await new_cluster(ccs_server, unique)
    node = await register_node(ccs_server.address, token, "n1")
    api = channel(ccs_server.address)
    try:
        # On the API port there is no client certificate: neither no token nor the admin's passes.
        for md in ((), (("authorization", f"Bearer {ccs_server.token}"),)):
            code, details, _ = await code_and_reason(
                agent_pb2_grpc.DispatcherStub(api).Heartbeat(agent_pb2.HeartbeatRequest(), metadata=md))
            assert code == grpc.StatusCode.UNAUTHENTICATED and "the node's certificate" in details
        # The node certificate grants nothing on the user API.
        code, _, _ = await code_and_reason(
            api_pb2_grpc.ClusterServiceStub(node.channel).ListClusters(
                api_pb2.ListClustersRequest()))
        assert code == grpc.StatusCode.UNAUTHENTICATED
        assert (await node.dispatcher.Heartbeat(agent_pb2.HeartbeatRequest())).period_ms > 0
    finally:
        await api.close()
        await node.close()


# ------------------------------------------------------------------ revocation

@pytest.mark.parametrize("how", ["revoke", "rm"])
async def test_a_revoked_node_is_refused_at_once_and_its_agent_stops(
    ccs_server: ServerProc, unique: str, tmp_path: Path, how: str,
) -> None:
    token = await new_cluster(ccs_server, unique)
    agent = Agent(ccs_server.address, runtime=FakeRuntime(), name="n1", join_token=token, state_dir=tmp_path)
    async with running(agent):
        await asyncio.wait_for(agent.connected.wait(), WAIT)
    # The node again, as raw gRPC with the agent's saved identity: the test picks the moment.
    identity = load_identity(tmp_path)
    assert identity is not None
    ch = node_tls.node_channel(ccs_server.address, identity)
    dispatcher = agent_pb2_grpc.DispatcherStub(ch)
    session = dispatcher.Session(agent_pb2.SessionRequest(agent_version="test"))
    logs = dispatcher.Logs()  # a log relay, as the agent keeps one to every replica
    try:
        assert (await session.read()).type == agent_pb2.SessionMessage.TYPE_COMPLETE
        await logs.initial_metadata()  # the relay was authenticated and is open
        await dispatcher.Heartbeat(agent_pb2.HeartbeatRequest())
        async with ccs_server.client() as client:
            if how == "revoke":
                assert await client.nodes.revoke(unique, "n1") == 1
            else:
                await client.nodes.delete(unique, "n1", force=True)
        # The very next call, on the same TLS connection, is refused.
        code, details, reason = await code_and_reason(dispatcher.Heartbeat(agent_pb2.HeartbeatRequest()))
        assert (code, reason) == (grpc.StatusCode.UNAUTHENTICATED, REASON_CERT_REVOKED), details
        # The open session ends too (checked again every heartbeat period).
        async def end_of_session() -> grpc.StatusCode:
            while True:
                try:
                    msg = await session.read()
                except grpc.aio.AioRpcError as exc:
                    return exc.code()
                if msg is grpc.aio.EOF:
                    return grpc.StatusCode.OK

        ended = await asyncio.wait_for(end_of_session(), WAIT)
        # Revoked: the per-call guard refuses it. Removed: the hub ends the removed node's
        # session (a clean end) or the guard does, whichever comes first; either way it ended.
        allowed = {grpc.StatusCode.UNAUTHENTICATED} if how == "revoke" else {
            grpc.StatusCode.UNAUTHENTICATED, grpc.StatusCode.OK}
        assert ended in allowed, (how, ended)
        # The log relay opened before the revocation ends too, as the guard ends a call.
        relay_code, relay_details, relay_reason = await asyncio.wait_for(code_and_reason(logs.read()), WAIT)
        assert relay_code == grpc.StatusCode.UNAUTHENTICATED, relay_details
        if how == "revoke":
            assert relay_reason == REASON_CERT_REVOKED
    finally:
        logs.cancel()
        session.cancel()
        await ch.close()
    # The agent, started again on that identity, stops with the reason instead of re-joining.
    again = Agent(ccs_server.address, runtime=FakeRuntime(), name="n1", join_token=token, state_dir=tmp_path)
    with pytest.raises(AgentError, match="revoked"):
        await asyncio.wait_for(again.run(), WAIT)
    async with ccs_server.client() as client:
        if how == "revoke":  # the node stays listed until removed
            assert (await client.nodes.get(unique, "n1")).meta.name == "n1"
        else:
            with pytest.raises(ccs.NotFound):
                await client.nodes.get(unique, "n1")


# ------------------------------------------------------------------ join tokens

async def test_a_rotated_or_foreign_or_old_token_is_refused(ccs_server: ServerProc, unique: str) -> None:
    first = await new_cluster(ccs_server, unique)
    async with ccs_server.client() as client:
        second = await client.clusters.join_token(unique, rotate=True)
    assert parse(first).ca_fingerprint == parse(second).ca_fingerprint and first != second
    api = channel(ccs_server.address)
    stub = agent_pb2_grpc.DispatcherStub(api)

    def register(token: str) -> object:
        return stub.Register(agent_pb2.RegisterRequest(join_token=token, name="n1", status=status("n1"),
                                                       csr_pem=csr))

    _, csr = node_tls.new_key_and_csr("n1")
    t = parse(first)
    old_format = JoinToken(t.cluster, t.secret, version=1).render()
    foreign = JoinToken(t.cluster, parse(second).secret, "0" * 64).render()
    try:
        for token, words in ((first, "invalid or rotated"), (old_format, "previous format"),
                             (foreign, "fingerprint is not this server's CA")):
            code, details, _ = await code_and_reason(register(token))
            assert code == grpc.StatusCode.UNAUTHENTICATED and words in details, (token, details)
        ok = await register(second)  # type: ignore[misc]
        assert ok.certificate_pem and ok.cluster == unique
    finally:
        await api.close()


async def test_an_agent_sends_nothing_to_a_server_without_the_tokens_ca(ccs_server: ServerProc, unique: str,
                                                                       tmp_path: Path) -> None:
    token = parse(await new_cluster(ccs_server, unique))
    wrong = JoinToken(token.cluster, token.secret, "0" * 64).render()
    agent = Agent(ccs_server.address, runtime=FakeRuntime(), name="n1", join_token=wrong, state_dir=tmp_path)
    with pytest.raises(AgentError, match="does not present the CA with fingerprint 0000"):
        await asyncio.wait_for(agent.run(), WAIT)
    async with ccs_server.client() as client:
        assert list(await client.nodes.list(unique)) == []
    assert not (tmp_path / "identity.json").exists()


# ------------------------------------------------------------------ an agent one version older

async def test_an_agent_without_a_csr_is_told_to_upgrade(ccs_server: ServerProc, unique: str) -> None:
    token = await new_cluster(ccs_server, unique)
    api = channel(ccs_server.address)
    try:
        code, details, _ = await code_and_reason(agent_pb2_grpc.DispatcherStub(api).Register(
            agent_pb2.RegisterRequest(join_token=token, name="old", status=status("old"))))
        assert code == grpc.StatusCode.FAILED_PRECONDITION and "upgrade" in details
    finally:
        await api.close()
    plain = grpc.aio.insecure_channel(ccs_server.address)  # what the previous agent opens
    try:
        code, _, _ = await code_and_reason(agent_pb2_grpc.DispatcherStub(plain).Register(
            agent_pb2.RegisterRequest(join_token=token, name="old", status=status("old")), timeout=10))
        assert code == grpc.StatusCode.UNAVAILABLE
    finally:
        await plain.close()


# ------------------------------------------------------------------ short-lived certificates

@pytest.fixture(scope="module")
def short_lived(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProc]:
    """A server issuing node certificates of TTL seconds, heartbeats every second."""
    base = tmp_path_factory.mktemp("short-lived")
    etcd: EtcdProc = start_etcd(base, "etcd")
    srv = start_server(base / "state", etcd.url, base / "config.yaml",
                       extra=["--node-cert-ttl", f"{TTL}s", "--heartbeat-period", "1"])
    yield srv
    srv.stop()
    etcd.stop()


async def test_certificates_renew_without_a_restart(short_lived: ServerProc, unique: str, tmp_path: Path) -> None:
    token = await new_cluster(short_lived, unique)
    agent = Agent(short_lived.address, runtime=FakeRuntime(), name="n1", join_token=token, state_dir=tmp_path)
    async with running(agent) as task:
        await asyncio.wait_for(agent.connected.wait(), WAIT)
        first = saved_certificate(tmp_path)
        serials = [first.serial_number]

        def renewed() -> bool:
            serial = saved_certificate(tmp_path).serial_number
            if serial != serials[-1]:
                serials.append(serial)
            return len(serials) >= 3 and agent.connected.is_set()

        await until(renewed, "the certificate was renewed twice")
        # The first certificate has expired by now; the agent is still the same process and
        # its node keeps heartbeating on the renewed one.
        assert dt.datetime.now(dt.UTC) > first.not_valid_after_utc
        assert not task.done()
        expired_at = first.not_valid_after_utc.timestamp()

        async def beats_after_expiry() -> bool:
            async with short_lived.client() as client:
                node = await client.nodes.get(unique, "n1")
            return node.status.state == pb.NODE_STATE_READY and node.status.last_heartbeat.seconds > expired_at + 1

        await until(beats_after_expiry, "a heartbeat after the first certificate expired")
    log = short_lived.log_path.read_text()
    assert log.count('"node certificate renewed"') >= 2


async def test_an_expired_certificate_is_replaced_with_the_join_token(short_lived: ServerProc, unique: str,
                                                                       tmp_path: Path) -> None:
    token = await new_cluster(short_lived, unique)
    agent = Agent(short_lived.address, runtime=FakeRuntime(), name="n1", join_token=token, state_dir=tmp_path)
    async with running(agent):
        await asyncio.wait_for(agent.connected.wait(), WAIT)
    old = saved_certificate(tmp_path)
    await until(lambda: dt.datetime.now(dt.UTC) > old.not_valid_after_utc, "the stopped agent's certificate expired")
    without = Agent(short_lived.address, runtime=FakeRuntime(), name="n1", state_dir=tmp_path)
    with pytest.raises(AgentError, match="no usable saved identity"):
        await asyncio.wait_for(without.run(), WAIT)
    again = Agent(short_lived.address, runtime=FakeRuntime(), name="n1", join_token=token, state_dir=tmp_path)
    async with running(again):
        await asyncio.wait_for(again.connected.wait(), WAIT)
    assert saved_certificate(tmp_path).serial_number != old.serial_number


async def test_an_insecure_server_keeps_the_previous_protocol(tmp_path: Path, unique: str) -> None:
    """Plaintext on purpose: what an agent one version older (no CSR, bearer credential) gets
    from a server started with --insecure."""
    etcd = start_etcd(tmp_path, "etcd")
    srv = start_server(tmp_path / "state", etcd.url, tmp_path / "c.yaml", extra=["--insecure"])
    try:
        async with srv.client() as client:
            await client.clusters.create(unique)
            token = await client.clusters.join_token(unique)
        ch = grpc.aio.insecure_channel(srv.address)
        try:
            stub = agent_pb2_grpc.DispatcherStub(ch)
            resp = await stub.Register(agent_pb2.RegisterRequest(join_token=token, name="old", status=status("old")))
            assert resp.credential and not resp.certificate_pem
            md = (("authorization", f"Bearer {resp.credential}"),)
            assert (await stub.Heartbeat(agent_pb2.HeartbeatRequest(), metadata=md)).period_ms > 0
        finally:
            await ch.close()
        agent = Agent(srv.address, runtime=FakeRuntime(), name="n2", join_token=token, state_dir=tmp_path / "a",
                      insecure=True)
        async with running(agent):
            await asyncio.wait_for(agent.connected.wait(), WAIT)
    finally:
        srv.stop()
        etcd.stop()


async def test_records_of_expired_certificates_are_pruned(short_lived: ServerProc, unique: str) -> None:
    token = await new_cluster(short_lived, unique)
    node = await register_node(short_lived.address, token, "n1")
    await node.close()
    old = x509.load_pem_x509_certificate(node.registered.certificate_pem.encode())
    newer = await register_node(short_lived.address, token, "n1")  # registered again: a second record
    await newer.close()
    etcd = Etcd([short_lived.etcd_url])
    try:
        prefix = keys.node_certs(unique, "n1")
        assert len((await etcd.range(prefix)).kvs) == 2
        await until(lambda: dt.datetime.now(dt.UTC) > old.not_valid_after_utc, "the first certificate expired")
        pruned = await node_certs.prune_expired(etcd, dt.datetime.now(dt.UTC))
        left = [kv.key.rsplit("/", 1)[-1] for kv in (await etcd.range(prefix)).kvs]
        assert pruned >= 1 and f"{old.serial_number:x}" not in left
    finally:
        await etcd.close()


async def test_an_identity_from_the_previous_release_registers_again(ccs_server: ServerProc, unique: str,
                                                                    tmp_path: Path) -> None:
    """What an upgraded agent finds in its state dir: a bearer credential, no certificate."""
    token = await new_cluster(ccs_server, unique)
    (tmp_path / "identity.json").write_text(json.dumps({"cluster": unique, "node": "n1", "credential": "ccsnode_x"}))
    without = Agent(ccs_server.address, runtime=FakeRuntime(), name="n1", state_dir=tmp_path)
    with pytest.raises(AgentError, match="no usable saved identity"):
        await asyncio.wait_for(without.run(), WAIT)
    agent = Agent(ccs_server.address, runtime=FakeRuntime(), name="n1", join_token=token, state_dir=tmp_path)
    async with running(agent):
        await asyncio.wait_for(agent.connected.wait(), WAIT)
    assert saved_certificate(tmp_path).subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == "n1"


async def test_an_address_the_certificate_does_not_name_stops_the_agent_with_the_fix(
    tmp_path: Path, unique: str,
) -> None:
    """127.0.0.2 reaches a server listening on 0.0.0.0, but its certificate does not name it."""
    port = free_port()
    etcd = start_etcd(tmp_path, "etcd")
    srv = start_server(tmp_path / "state", etcd.url, tmp_path / "c.yaml", port=port,
                       extra=["--listen", f"0.0.0.0:{port}"])
    try:
        token = await new_cluster(srv, unique)
        agent = Agent(f"127.0.0.2:{port}", runtime=FakeRuntime(), name="n1", join_token=token,
                      state_dir=tmp_path / "agent")
        with pytest.raises(AgentError, match=r"does not name '127\.0\.0\.2'.*--advertise 127\.0\.0\.2"):
            await asyncio.wait_for(agent.run(), WAIT)
    finally:
        srv.stop()
        etcd.stop()
