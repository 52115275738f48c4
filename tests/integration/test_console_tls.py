"""The web console of a server started with ``--client-ca`` (mutual TLS on the API port): the
console reaches the API over its own socket (``controlplane.console.api.ConsoleSocket``), not the
API port, whose client certificate it could not have. Its pages and live stream work; the API
port still wants a client certificate of everyone else.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest

import ccs
from controlplane.pki import certs
from nodeagent import node_tls
from tests.conftest import EtcdProc, ServerProc, start_etcd, start_server

from .console_browser import browser, goto, mark_loaded, needs_chromium, new_context, not_reloaded, shot, sign_in

pytestmark = [pytest.mark.etcd, needs_chromium]


@pytest.fixture
def own_etcd(tmp_path: Path) -> Iterator[EtcdProc]:
    proc = start_etcd(tmp_path)
    yield proc
    proc.stop()


def client_pki(tmp_path: Path) -> tuple[Path, Path, Path]:
    """An outside CA (an organisation's) and one person's certificate and key from it."""
    now = dt.datetime.now(dt.UTC)
    ca_key, ca = certs.new_ca(now)
    key_pem, csr_pem = node_tls.new_key_and_csr("alice")
    cert = certs.issue_node(ca_key, ca, certs.parse_csr(csr_pem), "people", "alice", now)
    ca_file, crt, key = tmp_path / "client-ca.pem", tmp_path / "alice.crt", tmp_path / "alice.key"
    ca_file.write_bytes(certs.cert_pem(ca))
    crt.write_bytes(certs.cert_pem(cert))
    key.write_text(key_pem)
    return ca_file, crt, key


def client(srv: ServerProc, crt: Path | None = None, key: Path | None = None) -> ccs.Client:
    return ccs.Client(srv.address, srv.token, ca_pem=srv.ca_pem, timeout=5, client_cert=crt, client_key=key)


def console_socket(srv: ServerProc) -> Path:
    """The console's socket, as the server logged it."""
    for line in srv.log_path.read_text().splitlines():
        if '"HTTPS endpoint listening"' in line:
            return Path(json.loads(line)["console_socket"].removeprefix("unix:"))
    raise AssertionError("the server logged no HTTPS endpoint")


def test_the_console_works_when_the_api_port_wants_client_certificates(
    own_etcd: EtcdProc, tmp_path: Path
) -> None:
    client_ca, crt, key = client_pki(tmp_path)
    srv = start_server(tmp_path / "state", own_etcd.url, tmp_path / "c.yaml", extra=["--client-ca", str(client_ca)])
    try:
        with pytest.raises(ccs.Unavailable), client(srv) as c:  # the API port wants a client certificate
            c.clusters.list()
        sock = console_socket(srv)
        assert sock.is_socket() and stat.S_IMODE(os.stat(sock.parent).st_mode) == 0o700
        with client(srv, crt, key) as c:
            c.clusters.create("mtls")
        with browser() as b:
            page = sign_in(new_context(b), srv.http_url, srv.token)  # the sign-in asks the API
            page.wait_for_selector("#clusters >> text=mtls")
            goto(page, f"{srv.http_url}/console/c/mtls/applications")
            page.wait_for_selector("#applications >> text=no applications")
            assert page.inner_text("#signed-in-as") == "admin (admin)"
            mark_loaded(page)
            with client(srv, crt, key) as c:
                c.applications.create("mtls", "shop", "services:\n  web:\n    image: local/busybox:1\n")
            page.wait_for_selector("#applications tr[data-app=shop]")  # live, over the console's socket
            assert not_reloaded(page)
            shot(page, tmp_path, "mtls-applications")
    finally:
        srv.stop()
    assert not sock.parent.exists()  # removed as the server stops
