"""The API over TLS, against real ccs-server processes on a real etcd.

- First start: a cluster CA (key wrapped by the master key in etcd), a 0600 master key file,
  a server certificate naming the host and every --advertise address, a client config that
  pins the CA; the API answers TLS only; plaintext is refused.
- Two servers given the same master key file (and etcd) serve and sign with the same CA; a
  server without it, or with another key, refuses to start and says which key it needs.
- --insecure: plaintext, a warning at every start.
- Bring your own: --tls-cert/--tls-key serve that chain (join tokens pin its root); --client-ca
  requires a client certificate from that CA.
- ``ccs login --ca-fingerprint``: pins the CA when the fingerprint matches, refuses otherwise
  and writes nothing.
"""

from __future__ import annotations

import asyncio
import dataclasses
import datetime as dt
import json
import os
import stat
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import aetcd
import grpc
import pytest
import yaml
from cryptography import x509
from grpc_health.v1 import health_pb2, health_pb2_grpc

import ccs
from ccs.join_token import parse
from ccs.tls import fetch_chain, fingerprint
from ccs.v1 import agent_pb2, agent_pb2_grpc
from controlplane.pki import certs
from controlplane.pki.keywrap import create_master_key
from nodeagent import node_tls
from tests.conftest import ROOT, EtcdProc, ServerProc, free_port, start_etcd, start_server
from tests.integration.cli_process import cli
from tests.integration.node_link import register_node
from tests.integration.polling import wait_for

pytestmark = pytest.mark.etcd


@pytest.fixture
def own_etcd(tmp_path: Path) -> Iterator[EtcdProc]:
    proc = start_etcd(tmp_path, "etcd")
    yield proc
    proc.stop()


def leaf_sans(address: str) -> tuple[list[str], list[str]]:
    """The DNS and IP names of the certificate the server at ``address`` presents."""
    leaf = x509.load_der_x509_certificate(fetch_chain(address).certificates[0])
    sans = leaf.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    return sans.get_values_for_type(x509.DNSName), [str(a) for a in sans.get_values_for_type(x509.IPAddress)]


async def etcd_value(etcd: EtcdProc, key: str) -> bytes | None:
    client = aetcd.Client("127.0.0.1", etcd.client_port)
    try:
        got = await client.get(key.encode())
        return bytes(got.value) if got is not None else None
    finally:
        await client.close()


async def cluster_names(srv: ServerProc, **kw: object) -> list[str]:
    async with ccs.AsyncClient(srv.address, srv.token, **kw) as client:  # type: ignore[arg-type]
        return [c.meta.name for c in await client.clusters.list()]


def test_first_start_creates_the_ca_and_serves_tls_only(own_etcd: EtcdProc, tmp_path: Path) -> None:
    srv = start_server(tmp_path / "state", own_etcd.url, tmp_path / "config.yaml",
                       extra=["--advertise", "ccs.example.test,203.0.113.7:7443"])
    try:
        key_file = tmp_path / "state" / "master.key"
        assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
        # The CA key is in etcd only wrapped; the master key is not in etcd at all.
        stored = json.loads(asyncio.run(etcd_value(own_etcd, "/ccs/pki/ca")) or b"{}")
        assert b"PRIVATE KEY" not in json.dumps(stored).encode() and stored["key"]
        assert key_file.read_text().strip() not in json.dumps(stored)
        # The secrets data key is in etcd wrapped by the secrets key file (controlplane.secrets).
        secrets_file = tmp_path / "state" / "secrets.key"
        assert stat.S_IMODE(secrets_file.stat().st_mode) == 0o600
        data_key = json.loads(asyncio.run(etcd_value(own_etcd, "/ccs/secretkeys/000001")) or b"{}")
        assert data_key["key"] and secrets_file.read_text().strip() not in json.dumps(data_key)

        # The client config pins that CA, and the CLI works with it as written.
        ctx = yaml.safe_load((tmp_path / "config.yaml").read_text())["contexts"]["local"]
        assert ctx["tls"] is True and ctx["ca_pem"] == srv.ca_pem
        assert srv.ca_pem is not None
        assert certs.fingerprint(certs.load_cert(srv.ca_pem.encode())) == stored_fingerprint(stored)
        done = cli(tmp_path / "config.yaml", "cluster", "create", "tls1")
        assert done.returncode == 0, done.stderr

        dns, ips = leaf_sans(srv.address)
        assert {"ccs.example.test", "localhost", os.uname().nodename} <= set(dns)
        assert {"203.0.113.7", "127.0.0.1"} <= set(ips)

        # TLS only: a plaintext client gets nowhere, a client that does not trust the CA neither.
        with pytest.raises(ccs.Unavailable):
            asyncio.run(cluster_names(srv, tls=False, timeout=5))
        with pytest.raises(ccs.Unavailable, match=r"CERTIFICATE_VERIFY_FAILED|handshake"):
            asyncio.run(cluster_names(srv, timeout=5))  # system roots only
        assert "tls1" in asyncio.run(cluster_names(srv, ca_pem=srv.ca_pem))
    finally:
        srv.stop()


def stored_fingerprint(record: dict[str, str]) -> str:
    return certs.fingerprint(certs.load_cert(record["cert_pem"].encode()))


def test_two_servers_with_the_same_master_key_share_the_ca(own_etcd: EtcdProc, tmp_path: Path) -> None:
    a = start_server(tmp_path / "a", own_etcd.url, tmp_path / "a.yaml")
    b = start_server(tmp_path / "b", own_etcd.url, tmp_path / "b.yaml", expect_token=False,
                     extra=["--master-key-file", str(tmp_path / "a" / "master.key")])
    try:
        assert a.ca_pem is not None and a.ca_pem == b.ca_pem
        chain_a, chain_b = fetch_chain(a.address), fetch_chain(b.address)
        assert chain_a.certificates[-1] == chain_b.certificates[-1]  # the same CA ...
        assert chain_a.certificates[0] != chain_b.certificates[0]  # ... signed each one's certificate

        async def scenario() -> None:
            async with a.client() as client:
                await client.clusters.create("pair")
                token = await client.clusters.join_token("pair")
            # Registered through B (B signs with the shared CA key), then heard by A's node port.
            node = await register_node(b.address, token, "n1")
            await node.close()
            ch = node_tls.node_channel(a.address, dataclasses.replace(node.identity, node_port=a.node_port))
            try:
                resp = await agent_pb2_grpc.DispatcherStub(ch).Heartbeat(agent_pb2.HeartbeatRequest())
                assert resp.period_ms > 0
            finally:
                await ch.close()

        asyncio.run(scenario())
    finally:
        b.stop()
        a.stop()


@pytest.mark.parametrize("case", ["missing", "other"])
def test_a_server_without_the_master_key_refuses_to_start(own_etcd: EtcdProc, tmp_path: Path, case: str) -> None:
    first = start_server(tmp_path / "a", own_etcd.url, tmp_path / "a.yaml")
    first.stop()
    key = tmp_path / "wrong.key"
    if case == "other":
        create_master_key(key)
    state = tmp_path / "b"
    state.mkdir()
    done = subprocess.run(
        [sys.executable, "-m", "controlplane.main", "--listen", f"127.0.0.1:{free_port()}",
         "--node-listen", f"127.0.0.1:{free_port()}", "--http-listen", "127.0.0.1:0", "--state-dir", str(state),
         "--etcd", own_etcd.url,
         "--client-config", str(tmp_path / "b.yaml"), "--master-key-file", str(key), "--log-format", "json",
         "--metrics-listen", "127.0.0.1:0"],
        cwd=ROOT, capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 1
    said = done.stderr.strip().splitlines()[-1]
    if case == "missing":
        assert f"{key} does not exist: copy the master key file of the first server" in said, said
        assert not key.exists()  # never generated over an existing CA
    else:
        assert "is wrapped by master key" in said and "give this server the master key file" in said, said


def test_insecure_is_plaintext_and_warns_at_every_start(own_etcd: EtcdProc, tmp_path: Path) -> None:
    # Plaintext on purpose: this is the test of --insecure itself.
    port = free_port()
    for start in range(2):
        srv = start_server(tmp_path / "state", own_etcd.url, tmp_path / "c.yaml", port=port,
                           extra=["--insecure"], expect_token=start == 0)
        try:
            if start == 0:
                ctx = yaml.safe_load((tmp_path / "c.yaml").read_text())["contexts"]["local"]
                assert ctx["tls"] is False and ctx.get("ca_pem") is None
                token = srv.token
            srv.token = token
            assert asyncio.run(cluster_names(srv, tls=False)) == []
        finally:
            srv.stop()
        warnings = [json.loads(line) for line in srv.log_path.read_text().splitlines()
                    if '"--insecure' in line and '"warning"' in line]
        assert len(warnings) == start + 1  # one per start


def own_pki(tmp_path: Path, names: list[str]) -> tuple[Path, Path, Path, x509.Certificate]:
    """An outside CA (as an organisation's), a server certificate chain from it, and its key."""
    now = dt.datetime.now(dt.UTC)
    ca_key, ca = certs.new_ca(now)
    key, cert = certs.issue_server(ca_key, ca, names, now)
    chain, key_file, ca_file = tmp_path / "chain.pem", tmp_path / "key.pem", tmp_path / "ca.pem"
    chain.write_bytes(certs.cert_pem(cert) + certs.cert_pem(ca))
    key_file.write_bytes(certs.key_pem(key))
    ca_file.write_bytes(certs.cert_pem(ca))
    (tmp_path / "ca.key").write_bytes(certs.key_pem(ca_key))
    return chain, key_file, ca_file, ca


def test_bring_your_own_certificate(own_etcd: EtcdProc, tmp_path: Path) -> None:
    chain, key, ca_file, ca = own_pki(tmp_path, ["127.0.0.1"])
    srv = start_server(tmp_path / "state", own_etcd.url, tmp_path / "c.yaml",
                       extra=["--tls-cert", str(chain), "--tls-key", str(key)])
    try:
        assert srv.ca_pem == ca_file.read_text()  # the pinned root is the brought one
        presented = fetch_chain(srv.address).certificates
        assert fingerprint(presented[-1]) == certs.fingerprint(ca)

        async def scenario() -> None:
            async with srv.client() as client:
                await client.clusters.create("own")
                token = await client.clusters.join_token("own")
            assert parse(token).ca_fingerprint == certs.fingerprint(ca)
            node = await register_node(srv.address, token, "n1")  # the node port keeps the cluster CA
            try:
                assert node.registered.ca_pem != ca_file.read_text()
                await node.dispatcher.Heartbeat(agent_pb2.HeartbeatRequest())
            finally:
                await node.close()

        asyncio.run(scenario())
    finally:
        srv.stop()


def test_client_ca_requires_a_client_certificate(own_etcd: EtcdProc, tmp_path: Path) -> None:
    _, _, client_ca, _ = own_pki(tmp_path, ["unused"])
    now = dt.datetime.now(dt.UTC)
    ca_key = certs.load_key((tmp_path / "ca.key").read_bytes())
    ca = certs.load_cert(client_ca.read_bytes())
    key_pem, csr_pem = node_tls.new_key_and_csr("alice")
    cert = certs.issue_node(ca_key, ca, certs.parse_csr(csr_pem), "people", "alice", now)
    (tmp_path / "alice.crt").write_bytes(certs.cert_pem(cert))
    (tmp_path / "alice.key").write_text(key_pem)
    srv = start_server(tmp_path / "state", own_etcd.url, tmp_path / "c.yaml", extra=["--client-ca", str(client_ca)])
    try:
        with pytest.raises(ccs.Unavailable):
            asyncio.run(cluster_names(srv, ca_pem=srv.ca_pem, timeout=5))  # no client certificate
        assert asyncio.run(cluster_names(srv, ca_pem=srv.ca_pem, client_cert=str(tmp_path / "alice.crt"),
                                         client_key=str(tmp_path / "alice.key"))) == []
    finally:
        srv.stop()


def test_login_pins_the_ca_by_fingerprint_or_refuses(ccs_server: ServerProc, tmp_path: Path) -> None:
    assert ccs_server.ca_pem is not None
    fp = certs.fingerprint(certs.load_cert(ccs_server.ca_pem.encode()))
    openssl_style = ":".join(fp[i:i + 2].upper() for i in range(0, 64, 2))
    config = tmp_path / "elsewhere.yaml"

    wrong = cli(config, "login", ccs_server.address, "--token", ccs_server.token, "--ca-fingerprint", "0" * 64)
    assert wrong.returncode == 6 and "does not present the CA with fingerprint 000" in wrong.stderr
    assert not config.exists()  # nothing written, the token never sent
    bad_token = cli(config, "login", ccs_server.address, "--token", "nope", "--ca-fingerprint", fp)
    assert bad_token.returncode == 6 and "refused the token" in bad_token.stderr and not config.exists()

    done = cli(config, "login", ccs_server.address, "--token", ccs_server.token,
                   "--ca-fingerprint", openssl_style, "--name", "remote")
    assert done.returncode == 0, done.stderr
    ctx = yaml.safe_load(config.read_text())
    assert ctx["current-context"] == "remote"
    assert ctx["contexts"]["remote"]["ca_pem"] == ccs_server.ca_pem and ctx["contexts"]["remote"]["tls"] is True
    assert stat.S_IMODE(config.stat().st_mode) == 0o600
    assert cli(config, "cluster", "ls").returncode == 0


def test_a_plaintext_or_unpinned_channel_never_gets_an_answer(ccs_server: ServerProc) -> None:
    async def attempt(secure: bool) -> grpc.StatusCode:
        ch = (grpc.aio.secure_channel(ccs_server.address, grpc.ssl_channel_credentials()) if secure
              else grpc.aio.insecure_channel(ccs_server.address))
        try:
            await health_pb2_grpc.HealthStub(ch).Check(health_pb2.HealthCheckRequest(), timeout=5)
        except grpc.aio.AioRpcError as exc:
            return exc.code()
        finally:
            await ch.close()
        return grpc.StatusCode.OK

    assert asyncio.run(attempt(secure=False)) == grpc.StatusCode.UNAVAILABLE
    assert asyncio.run(attempt(secure=True)) == grpc.StatusCode.UNAVAILABLE  # system roots: not trusted


def test_an_installation_from_before_tls_keeps_a_working_context(own_etcd: EtcdProc, tmp_path: Path) -> None:
    """The first start (here --insecure, as every server was before TLS) wrote a plaintext
    context; the next start with TLS updates that context's TLS settings, so `ccs` keeps working
    on the server's host without a new login."""
    port, config = free_port(), tmp_path / "c.yaml"
    old = start_server(tmp_path / "state", own_etcd.url, config, port=port, extra=["--insecure"])
    old.stop()
    assert yaml.safe_load(config.read_text())["contexts"]["local"]["tls"] is False
    srv = start_server(tmp_path / "state", own_etcd.url, config, port=port, expect_token=False)
    try:
        def refreshed() -> bool:
            return bool(yaml.safe_load(config.read_text())["contexts"]["local"].get("ca_pem"))
        wait_for("the context refreshed", refreshed, 30)
        ctx = yaml.safe_load(config.read_text())["contexts"]["local"]
        assert ctx["tls"] is True and ctx["ca_pem"] == srv.ca_pem and ctx["token"] == old.token
        assert cli(config, "cluster", "ls").returncode == 0
    finally:
        srv.stop()


def test_cli_without_a_context_verifies_against_ca_file(ccs_server: ServerProc, tmp_path: Path) -> None:
    none = tmp_path / "none.yaml"
    base = ["--server", ccs_server.address, "--token", ccs_server.token]
    unpinned = cli(none, *base, "cluster", "ls")
    assert unpinned.returncode == 7 and "CERTIFICATE_VERIFY_FAILED" in unpinned.stderr
    pinned = cli(none, *base, "--ca-file", str(ccs_server.state_dir / "ca.crt"), "cluster", "ls")
    assert pinned.returncode == 0, pinned.stderr
