"""ccs-server on an etcd member that serves TLS and requires client certificates.

The member is started here with etcd 3.4's own flags (--cert-file, --key-file, --trusted-ca-file,
--client-cert-auth) and certificates from a CA made for the test. The server connects with
--etcd-cacert/--etcd-cert/--etcd-key (controlplane/store/etcd_tls.py); without a client
certificate the member refuses it, and endpoints that do not match the flags are refused with a
message naming them.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import re
import shutil
import signal
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from aetcd import rpc

from controlplane.pki import certs
from controlplane.store.etcd import Etcd
from nodeagent.node_tls import new_key_and_csr
from tests.conftest import ROOT, free_port, start_server, wait_port

pytestmark = pytest.mark.etcd


@dataclass
class TlsEtcd:
    url: str
    ca: Path
    cert: Path
    key: Path


@pytest.fixture
def tls_etcd(tmp_path: Path) -> Iterator[TlsEtcd]:
    if shutil.which("etcd") is None:
        pytest.skip("etcd binary not installed")
    now = dt.datetime.now(dt.UTC)
    ca_key, ca = certs.new_ca(now)
    server_key, server = certs.issue_server(ca_key, ca, ["127.0.0.1", "localhost"], now)
    client_key_pem, csr = new_key_and_csr("ccs-server")
    client = certs.issue_node(ca_key, ca, certs.parse_csr(csr), "ccs", "ccs-server", now)  # clientAuth usage
    files = {name: tmp_path / f"{name}.pem" for name in ("ca", "server", "server-key", "client", "client-key")}
    files["ca"].write_bytes(certs.cert_pem(ca))
    files["server"].write_bytes(certs.cert_pem(server))
    files["server-key"].write_bytes(certs.key_pem(server_key))
    files["client"].write_bytes(certs.cert_pem(client))
    files["client-key"].write_text(client_key_pem)
    port, peer = free_port(), free_port()
    url = f"https://127.0.0.1:{port}"
    log = open(tmp_path / "etcd.log", "wb")  # noqa: SIM115 - the child's
    proc = subprocess.Popen(
        ["etcd", "--name", "tls", "--data-dir", str(tmp_path / "data"), "--listen-client-urls", url,
         "--advertise-client-urls", url, "--listen-peer-urls", f"http://127.0.0.1:{peer}",
         "--initial-advertise-peer-urls", f"http://127.0.0.1:{peer}",
         "--initial-cluster", f"tls=http://127.0.0.1:{peer}", "--cert-file", str(files["server"]),
         "--key-file", str(files["server-key"]), "--trusted-ca-file", str(files["ca"]), "--client-cert-auth",
         "--log-level", "error"],
        stdout=log, stderr=log)
    log.close()
    try:
        wait_port(port, proc=proc)
        yield TlsEtcd(url, files["ca"], files["client"], files["client-key"])
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(15)


def test_the_server_uses_an_etcd_over_tls_with_a_client_certificate(tls_etcd: TlsEtcd, tmp_path: Path) -> None:
    flags = ["--etcd-cacert", str(tls_etcd.ca), "--etcd-cert", str(tls_etcd.cert), "--etcd-key", str(tls_etcd.key)]
    srv = start_server(tmp_path / "state", tls_etcd.url, tmp_path / "c.yaml", extra=flags)
    try:
        assert srv.token, srv.log_path.read_text()
        ready = [json.loads(line) for line in srv.log_path.read_text().splitlines() if '"etcd ready"' in line]
        assert ready and ready[0]["tls"] is True and ready[0]["endpoints"] == [tls_etcd.url.removeprefix("https://")]
        async def create() -> list[str]:
            async with srv.client() as client:
                await client.clusters.create("over-tls")
                return [c.meta.name for c in await client.clusters.list()]

        assert asyncio.run(create()) == ["over-tls"]
    finally:
        srv.stop()


def run_server(tmp_path: Path, etcd: str, *flags: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "controlplane.main", "--listen", f"127.0.0.1:{free_port()}", "--node-listen",
         f"127.0.0.1:{free_port()}", "--http-listen", "127.0.0.1:0", "--state-dir", str(tmp_path / "s"),
         "--client-config", str(tmp_path / "c.yaml"),
         "--etcd", etcd, "--etcd-wait", "3", "--log-format", "json", "--metrics-listen", "127.0.0.1:0", *flags],
        cwd=ROOT, capture_output=True, text=True, timeout=60, check=False)


#: A line gRPC's C core logs by itself (``E1130 18:03:48.846511   27842 secure_endpoint.cc:269] ...``),
#: from its own threads and so at any time, also after the server's last word.
GRPC_CORE_LINE = re.compile(r"^[EWID]\d{4} \d\d:\d\d:\d\d\.\d+ +\d+ \S+:\d+\]")


def last_word(stderr: str) -> str:
    """The server's last stderr line, not counting gRPC's own log lines."""
    lines = [line for line in stderr.strip().splitlines() if not GRPC_CORE_LINE.match(line)]
    return lines[-1] if lines else ""


def test_without_a_client_certificate_the_member_refuses(tls_etcd: TlsEtcd, tmp_path: Path) -> None:
    done = run_server(tmp_path, tls_etcd.url, "--etcd-cacert", str(tls_etcd.ca))
    assert done.returncode == 1
    assert "not ready after 3.0s" in last_word(done.stderr), done.stderr


@pytest.mark.parametrize(("endpoint", "flags", "said"), [
    ("http://127.0.0.1:2379", ["--etcd-cacert", "CA"], "with --etcd-cacert every endpoint must be https://"),
    ("https://127.0.0.1:2379", [], "pass --etcd-cacert"),
])
def test_endpoints_that_do_not_match_the_flags_are_named(tls_etcd: TlsEtcd, tmp_path: Path, endpoint: str,
                                                        flags: list[str], said: str) -> None:
    done = run_server(tmp_path, endpoint, *[str(tls_etcd.ca) if f == "CA" else f for f in flags])
    assert done.returncode == 1
    last = last_word(done.stderr)
    assert endpoint in last and said in last, last


def test_the_lease_keepers_blocking_channel_uses_the_same_credentials(tls_etcd: TlsEtcd) -> None:
    """The liveness lease's thread (controlplane/dispatcher/lease_keeper.py) has a synchronous
    channel of its own: it must reach a member that demands a client certificate."""
    etcd = Etcd([tls_etcd.url], cacert=tls_etcd.ca, cert=tls_etcd.cert, key=tls_etcd.key)
    channel = etcd.blocking_channel()
    try:
        granted = rpc.LeaseStub(channel).LeaseGrant(rpc.LeaseGrantRequest(TTL=5), timeout=10)
        kept = next(iter(rpc.LeaseStub(channel).LeaseKeepAlive(iter([rpc.LeaseKeepAliveRequest(ID=granted.ID)]),
                                                                timeout=10)))
        assert granted.ID > 0 and kept.TTL > 0
    finally:
        channel.close()
