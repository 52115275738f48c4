"""The router terminating HTTPS with the REAL haproxy binary: SNI picks each domain's
certificate, HTTP to such a domain redirects to HTTPS, and a new certificate version is
applied at runtime under steady load with no failed request (asserted on the certificate
serial each handshake got, not on timing). Certificates are made with `cryptography`.
"""

from __future__ import annotations

import asyncio
import ssl
import threading
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from cryptography import x509

from ccs.v1 import resources_pb2 as pb
from nodeagent.router import ApplyResult, Router, RouterSettings
from tests.conftest import free_port
from tests.route_certs import TestCA

from .router_helpers import backend, entry, get, https_get, needs_haproxy, servers

__all__ = ["servers"]  # the fixture, imported for pytest

pytestmark = [needs_haproxy, pytest.mark.timeout(120)]


@pytest.fixture
async def router(tmp_path: Path) -> AsyncIterator[Router]:
    settings = RouterSettings(
        state_dir=tmp_path / "router", bind_address="127.0.0.1", port=free_port(), https_port=free_port()
    )
    r = Router(settings)
    await r.start()
    yield r
    await r.stop()


def tables(shop: int, blog: int, version: int, ports: dict[str, int]) -> pb.RoutingTable:
    return pb.RoutingTable(cluster="c", version=version, routes=[
        entry("web", "shop.example", backend("web-1", ports["web-1"]), tls=pb.RouteTLS(secret="shop", version=shop)),
        entry("api", "blog.example", backend("api-1", ports["api-1"]), tls=pb.RouteTLS(secret="blog", version=blog)),
        entry("plain", "plain.example", backend("web-2", ports["web-2"])),
    ])


async def test_sni_redirect_and_certificate_update_under_load(router: Router, servers: dict[str, int]) -> None:
    ca = TestCA()
    https = router.settings.https_port
    material = {
        ("shop", 1): ca.leaf("shop.example", serial=1001),
        ("blog", 1): ca.leaf("blog.example", serial=2001),
    }
    assert await router.apply(tables(1, 1, 1, servers), material) is ApplyResult.RELOADED
    pem_files = sorted(p.name for p in router.settings.certificate_dir.glob("*.pem"))
    assert pem_files == ["blog.example.pem", "shop.example.pem"]
    assert all(p.stat().st_mode & 0o777 == 0o600 for p in router.settings.certificate_dir.glob("*.pem"))

    # SNI picks each domain's certificate; both verify against the CA for their name.
    assert await asyncio.to_thread(https_get, ca.pem, https, "shop.example") == (200, "web-1", 1001)
    assert await asyncio.to_thread(https_get, ca.pem, https, "blog.example") == (200, "api-1", 2001)

    # HTTP to an HTTPS domain redirects (path and query kept); a clear domain is served as before.
    status, _, headers = await get(router.settings.port, "shop.example:80", "/a/b?c=1")
    assert status == 308 and headers["location"] == f"https://shop.example:{https}/a/b?c=1"
    assert (await get(router.settings.port, "plain.example"))[:2] == (200, "web-2")
    # The clear domain is not served on the HTTPS side.
    assert (await get(router.settings.port, "blog.example"))[0] == 308

    # Certificate update under steady load: runtime API, same worker, no failed request,
    # and every handshake after the apply gets the new serial.
    worker = (await router.api.show_info())["Pid"]
    stop = threading.Event()
    seen: list[object] = []
    count = {1001: 0, 1002: 0}
    # Conditions, not timing: 30 requests ran on the old certificate, then 20 on the new one.
    ready = {1001: (30, threading.Event()), 1002: (20, threading.Event())}

    def load() -> None:
        while not stop.is_set():
            try:
                status, body, serial = https_get(ca.pem, https, "shop.example")
                seen.append((status, body, serial))
                count[serial] = count.get(serial, 0) + 1
                if serial in ready and count[serial] >= ready[serial][0]:
                    ready[serial][1].set()
            except (OSError, ssl.SSLError) as exc:
                seen.append(f"error {type(exc).__name__}: {exc}")

    loops = [asyncio.create_task(asyncio.to_thread(load)) for _ in range(2)]
    assert await asyncio.to_thread(ready[1001][1].wait, 60)
    material[("shop", 2)] = ca.leaf("shop.example", serial=1002)
    assert await router.apply(tables(2, 1, 2, servers), material) is ApplyResult.CERTIFICATES
    assert await asyncio.to_thread(ready[1002][1].wait, 60)
    stop.set()
    await asyncio.gather(*loops)

    failures = [s for s in seen if not (isinstance(s, tuple) and s[:2] == (200, "web-1"))]
    serials = [s[2] for s in seen if isinstance(s, tuple)]
    print(f"{len(seen)} requests across the certificate update, failures: {failures[:5]}")
    assert failures == []
    assert 1001 in serials and 1002 in serials
    # Every handshake that began after the apply returned got the new certificate.
    assert await asyncio.to_thread(https_get, ca.pem, https, "shop.example") == (200, "web-1", 1002)
    assert (await router.api.show_info())["Pid"] == worker
    assert await asyncio.to_thread(https_get, ca.pem, https, "blog.example") == (200, "api-1", 2001)
    on_disk = x509.load_pem_x509_certificates((router.settings.certificate_dir / "shop.example.pem").read_bytes())
    assert on_disk[0].serial_number == 1002  # a restart or reload starts from the new one

    # A domain that stops naming a certificate loses its file (keys do not linger).
    table = pb.RoutingTable(cluster="c", version=3, routes=list(tables(2, 1, 3, servers).routes)[1:])
    assert await router.apply(table, material) is ApplyResult.RELOADED
    assert not (router.settings.certificate_dir / "shop.example.pem").exists()
    assert (await get(router.settings.port, "shop.example"))[0] == 404
