"""Trigger callbacks go to CI servers, never into the control plane's own hosts (SSRF).

A deployer picks the callback URL and the *server* sends it, so the address is checked where
the trigger is made and again before each send (:mod:`controlplane.triggers.callback_target`):
loopback, link-local (cloud metadata), unspecified, multicast and reserved addresses always
refused; private ones only with ``--allow-private-callbacks``. The receivers are real HTTP
servers on this host; the refused sends are refused before any connection, so "nothing
arrived" is read once the call has returned, with no wait.
"""

from __future__ import annotations

import asyncio
import ipaddress
import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

import ccs
from ccs.interfaces import interface_addresses
from controlplane.triggers import callback
from controlplane.triggers.callback_target import CallbackRefused
from controlplane.triggers.signature import ccs_signature
from tests.conftest import ServerProc, start_etcd, start_server
from tests.integration.trigger_helpers import TEMPLATE, ccs_headers, post, prepare

pytestmark = pytest.mark.etcd

Received = list[tuple[dict[str, str], bytes]]


def _private_address() -> str:
    """An address of this host that is private but neither loopback nor link-local."""
    for a in interface_addresses():
        ip = ipaddress.ip_address(a)
        if not ip.is_global and not ip.is_loopback and not ip.is_link_local:
            return a
    pytest.skip("this host has no private, non-loopback IPv4 address to receive a callback on")


@pytest.fixture
def receiver(request: pytest.FixtureRequest) -> Iterator[tuple[str, Received]]:
    """A plain HTTP server on ``request.param`` (an address of this host) recording its POSTs."""
    host = _private_address() if request.param == "private" else request.param
    received: Received = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers["content-length"]))
            received.append(({k.lower(): v for k, v in self.headers.items()}, body))
            self.send_response(204)
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    srv = ThreadingHTTPServer((host, 0), Handler)
    thread = threading.Thread(target=srv.serve_forever, daemon=True)
    thread.start()
    yield f"http://{host}:{srv.server_address[1]}/hook", received
    srv.shutdown()
    thread.join()


@pytest.mark.parametrize("url", ["http://127.0.0.1:2379/v3/kv/put", "http://localhost:9/hook", "http://[::1]/hook",
                                 "http://169.254.169.254/latest/meta-data/", "http://0.0.0.0:80/",
                                 "http://[::ffff:127.0.0.1]/hook", "http://10.1.2.3/hook"])
async def test_a_callback_into_the_control_planes_hosts_is_refused_at_creation(ccs_server: ServerProc, unique: str,
                                                                               url: str) -> None:
    async with ccs_server.client() as cl:
        await cl.clusters.create(unique)
        await cl.applications.create(unique, "shop", TEMPLATE)
        with pytest.raises(ccs.errors.InvalidArgument) as refused:
            await cl.triggers.create(unique, "shop", "again", "redeploy", callback_url=url)
        message = str(refused.value)
        assert "callback_url:" in message
        if url.startswith("http://10."):  # private: this server was not started to allow those
            assert "--allow-private-callbacks" in message
        assert await cl.triggers.list(unique, "shop") == []  # nothing made


@pytest.mark.parametrize("receiver", ["127.0.0.1"], indirect=True)
async def test_a_send_to_a_loopback_address_is_refused_before_connecting(receiver: tuple[str, Received]) -> None:
    """The check before each send (DNS may have changed since the trigger was made)."""
    url, received = receiver
    for target in (url, url.replace("127.0.0.1", "localhost")):
        with pytest.raises(CallbackRefused, match="loopback"):
            await callback.send(target, {"phase": "x"}, b"secret", attempts=1, allow_private=True)
    assert received == []


@pytest.mark.parametrize("receiver", ["private"], indirect=True)
async def test_a_send_to_a_private_address_needs_the_option(receiver: tuple[str, Received]) -> None:
    url, received = receiver
    with pytest.raises(CallbackRefused, match="--allow-private-callbacks"):
        await callback.send(url, {"phase": "x"}, b"secret", attempts=1)
    assert received == []
    assert await callback.send(url, {"phase": "x"}, b"secret", attempts=1, allow_private=True) == 204
    assert len(received) == 1


@pytest.mark.parametrize("receiver", ["private"], indirect=True)
async def test_the_callback_gets_the_final_phase_signed(tmp_path: Path, unique: str,
                                                        receiver: tuple[str, Received]) -> None:
    url, received = receiver
    etcd = start_etcd(tmp_path)
    srv = start_server(tmp_path / "s", etcd.url, tmp_path / "c.yaml", extra=["--allow-private-callbacks"])
    try:
        s = await prepare(srv, unique, callback=url)
        body = b'{"replicas": 2}'
        r = await post(s, "scale", body, ccs_headers(s.secrets["scale"], body))
        assert r.status_code == 200, r.text
        for _ in range(300):
            if received:
                break
            await asyncio.sleep(0.05)
        headers, sent = received[0]
        assert headers["x-ccs-signature"] == ccs_signature(s.secrets["scale"].encode(), headers["x-ccs-timestamp"],
                                                           sent)
        assert headers["host"] == url.split("/")[2]
        assert json.loads(sent)["phase"] == "scaled"
    finally:
        srv.stop()
        etcd.stop()
