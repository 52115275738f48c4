"""Helpers for the tests of the router against the REAL haproxy binary: small HTTP servers on
127.0.0.1 that answer their own name (and 500 under /fail), with HTTP/1.1 keep-alive so HAProxy's
server-side connection reuse is exercised too; clients are `http.client` in threads.

(Not named ``test_*``: it holds no tests. The fixtures are imported by the test modules.)
"""

from __future__ import annotations

import asyncio
import http.client
import shutil
import socket
import ssl
import tempfile
import threading
from collections import Counter
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509

from ccs.v1 import resources_pb2 as pb
from nodeagent.router import Router, RouterSettings
from tests.conftest import free_port

needs_haproxy = pytest.mark.skipif(shutil.which("haproxy") is None, reason="haproxy is not installed")


async def serve_name(name: str) -> asyncio.Server:
    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                path = head.split(b" ", 2)[1].decode()
                status = "500 Internal Server Error" if "/fail" in path else "200 OK"
                body = name.encode()
                writer.write(
                    f"HTTP/1.1 {status}\r\nContent-Length: {len(body)}\r\nContent-Type: text/plain\r\n\r\n".encode()
                    + body
                )
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()

    return await asyncio.start_server(handle, "127.0.0.1", 0)


def port_of(server: asyncio.Server) -> int:
    port: int = server.sockets[0].getsockname()[1]
    return port


def fetch(
    port: int, host: str, path: str = "/", headers: dict[str, str] | None = None
) -> tuple[int, str, dict[str, str]]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        conn.request("GET", path, headers={"Host": host, **(headers or {})})
        r = conn.getresponse()
        return r.status, r.read().decode(), {k.lower(): v for k, v in r.getheaders()}
    finally:
        conn.close()


async def get(port: int, host: str, path: str = "/", **headers: str) -> tuple[int, str, dict[str, str]]:
    return await asyncio.to_thread(fetch, port, host, path, {k.replace("_", "-"): v for k, v in headers.items()})


async def split(port: int, host: str, n: int) -> Counter[str]:
    results = await asyncio.gather(*(get(port, host) for _ in range(n)))
    return Counter(body for status, body, _ in results if status == 200)


def https_get(ca_pem: bytes, port: int, domain: str, path: str = "/", host: str = "127.0.0.1") -> tuple[int, str, int]:
    """One request on a new TLS connection with SNI ``domain``, verified against ``ca_pem``:
    (status, body, serial of the certificate served)."""
    with tempfile.NamedTemporaryFile(suffix=".pem") as f:
        f.write(ca_pem)
        f.flush()
        ctx = ssl.create_default_context(cafile=f.name)
    with socket.create_connection((host, port), timeout=10) as raw, ctx.wrap_socket(
        raw, server_hostname=domain
    ) as tls:
        der = tls.getpeercert(binary_form=True)
        assert der is not None
        serial = x509.load_der_x509_certificate(der).serial_number
        tls.sendall(f"GET {path} HTTP/1.1\r\nHost: {domain}\r\nConnection: close\r\n\r\n".encode())
        data = b""
        while chunk := tls.recv(65536):
            data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    return int(head.split(b" ", 2)[1]), body.decode(), serial


def backend(name: str, port: int, weight: int = 100, group: str = "stable") -> pb.RouteBackend:
    return pb.RouteBackend(container=name, node="n1", address="127.0.0.1", port=port, weight=weight, group=group)


def entry(service: str, domain: str, *backends: pb.RouteBackend, path: str = "/", **kw: Any) -> pb.RouteEntry:
    return pb.RouteEntry(application="shop", service=service, domain=domain, path=path, backends=backends, **kw)


@pytest.fixture
async def servers() -> AsyncIterator[dict[str, int]]:
    started = {name: await serve_name(name) for name in ("web-1", "web-2", "api-1", "new-1")}
    yield {name: port_of(s) for name, s in started.items()}
    for s in started.values():
        s.close()


@pytest.fixture
async def router(tmp_path: Path) -> AsyncIterator[Router]:
    r = Router(RouterSettings(state_dir=tmp_path / "router", bind_address="127.0.0.1", port=free_port()))
    await r.start()
    yield r
    await r.stop()


def load_loop(port: int, stop: threading.Event, outcomes: list[str], keep_alive: bool) -> None:
    conn: http.client.HTTPConnection | None = None
    while not stop.is_set():
        try:
            if conn is None:
                conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
            conn.request("GET", "/", headers={"Host": "shop.example"})
            r = conn.getresponse()
            body = r.read().decode()
            outcomes.append(body if r.status == 200 else f"status {r.status}")
            if not keep_alive or r.getheader("connection", "").lower() == "close":
                conn.close()
                conn = None
        except (OSError, http.client.HTTPException) as exc:
            outcomes.append(f"error {type(exc).__name__}: {exc}")
            if conn is not None:
                conn.close()
            conn = None
    if conn is not None:
        conn.close()
