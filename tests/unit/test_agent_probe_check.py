"""Agent probes against small local servers (HTTP, TCP) and the fake runtime (cmd)."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator, Awaitable, Callable

import pytest

from ccs.v1 import resources_pb2 as pb
from nodeagent.probe_check import (
    ProbeError,
    ProbeStatus,
    http_probe,
    run_probe,
    target_address,
    tcp_probe,
    validate,
)
from nodeagent.runtime import FakeRuntime, Observed, PortBinding, State

Handler = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]


async def serve(handler: Handler) -> AsyncIterator[int]:
    server = await asyncio.start_server(handler, "127.0.0.1", 0)
    async with server:
        yield server.sockets[0].getsockname()[1]


def answering(status_line: bytes) -> Handler:
    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        writer.write(status_line + b"\r\nContent-Length: 0\r\n\r\n")
        await writer.drain()
        writer.close()

    return handle


@pytest.fixture
async def silent_port() -> AsyncIterator[int]:
    """A server that accepts and never answers."""
    release = asyncio.Event()

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await release.wait()
        writer.close()

    async for port in serve(handle):
        yield port
    release.set()


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])  # nothing listens once the socket is closed


@pytest.mark.parametrize(
    ("status_line", "expected"),
    [
        (b"HTTP/1.1 200 OK", ProbeStatus.SUCCESS),
        (b"HTTP/1.0 204 No Content", ProbeStatus.SUCCESS),
        (b"HTTP/1.1 302 Found", ProbeStatus.SUCCESS),
        (b"HTTP/1.1 404 Not Found", ProbeStatus.FAILURE),
        (b"HTTP/1.1 500 Internal Server Error", ProbeStatus.FAILURE),
        (b"SSH-2.0-OpenSSH", ProbeStatus.FAILURE),
    ],
)
async def test_http_probe_status_codes(status_line: bytes, expected: ProbeStatus) -> None:
    async for port in serve(answering(status_line)):
        result = await http_probe("127.0.0.1", port, "/health", timeout_seconds=5)
        assert result.status is expected, result.message
        assert result.message.startswith(f"GET http://127.0.0.1:{port}/health: ")


async def test_http_and_tcp_failures_say_why(silent_port: int) -> None:
    port = closed_port()
    refused = await http_probe("127.0.0.1", port, "/", timeout_seconds=5)
    assert refused.status is ProbeStatus.FAILURE and "refused" in refused.message.lower()
    slow = await http_probe("127.0.0.1", silent_port, "/", timeout_seconds=0.2)
    assert (slow.status, slow.message) == (
        ProbeStatus.FAILURE,
        f"GET http://127.0.0.1:{silent_port}/: no answer in 0.2s",
    )
    assert (await tcp_probe("127.0.0.1", silent_port, timeout_seconds=5)).ok
    tcp_refused = await tcp_probe("127.0.0.1", port, timeout_seconds=5)
    assert tcp_refused.status is ProbeStatus.FAILURE and f"tcp 127.0.0.1:{port}" in tcp_refused.message


@pytest.mark.parametrize(
    ("probe", "message"),
    [
        (pb.Probe(kind="grpc", port=80), "probe.kind: must be http, tcp or cmd, got 'grpc'"),
        (pb.Probe(kind="http"), "probe.port: must be a port in 1-65535 for a http probe, got 0"),
        (pb.Probe(kind="http", port=80, path="health"), "probe.path: must start with '/', got 'health'"),
        (pb.Probe(kind="cmd"), "probe.cmd: a cmd probe needs a command"),
    ],
)
def test_invalid_probes_name_the_field(probe: pb.Probe, message: str) -> None:
    with pytest.raises(ProbeError) as err:
        validate(probe)
    assert str(err.value) == message


def observed(**fields: object) -> Observed:
    base: dict[str, object] = {
        "docker_id": "d1",
        "name": "ccs-shop-web-1-x",
        "labels": {"ccs.cluster": "prod", "ccs.app": "shop"},
        "image": "local/webapp:v1",
        "state": State.CONTAINER_STATE_RUNNING,
        "started_at": 1000.0,
    }
    return Observed(**{**base, **fields})  # type: ignore[arg-type]


def test_target_address_prefers_app_network_then_published_port() -> None:
    on_net = observed(
        networks={"ccs-prod_shop": "172.18.0.4"}, ports=[PortBinding(80, "tcp", "0.0.0.0", 8080)]
    )
    assert target_address(on_net, 80, cluster="prod", app="shop") == ("172.18.0.4", 80)
    # A service on other Compose networks than "default": its address on one of them.
    on_back = observed(networks={"ccs-prod-shop_back": "10.128.0.34"}, addresses={"back": "10.128.0.34"},
                       ports=[PortBinding(80, "tcp", "0.0.0.0", 8080)])
    assert target_address(on_back, 80, cluster="prod", app="shop") == ("10.128.0.34", 80)
    published = observed(ports=[PortBinding(80, "tcp", "::", 8080), PortBinding(80, "tcp", "0.0.0.0", 8080)])
    assert target_address(published, 80, cluster="prod", app="shop") == ("127.0.0.1", 8080)
    with pytest.raises(ProbeError, match="no address for port 81"):
        target_address(published, 81, cluster="prod", app="shop")
    on_host = observed(networks={"host": ""})  # network_mode: host listens on the node's addresses
    assert target_address(on_host, 80, cluster="prod", app="shop") == ("127.0.0.1", 80)


async def test_run_probe_waits_then_probes_through_the_published_port() -> None:
    async for port in serve(answering(b"HTTP/1.1 200 OK")):
        target = observed(ports=[PortBinding(80, "tcp", "127.0.0.1", port)])
        probe = pb.Probe(kind="http", port=80, path="/health", initial_delay_seconds=30, timeout_seconds=5)
        early = await run_probe(probe, target, FakeRuntime(), now=1010.0)
        assert (early.status, early.message) == (ProbeStatus.WAITING, "initial delay of 30s")
        assert (await run_probe(probe, target, FakeRuntime(), now=1030.0)).ok
    no_port = await run_probe(pb.Probe(kind="tcp", port=81), observed(), FakeRuntime(), now=2000.0)
    assert no_port.status is ProbeStatus.FAILURE and "no address for port 81" in no_port.message


async def test_cmd_probe_through_the_runtime() -> None:
    rt = FakeRuntime(unhealthy_images={"local/webapp:bad"})
    results = []
    for slot, image in enumerate(("local/webapp:v1", "local/webapp:bad")):
        c = pb.Container(meta=pb.Meta(id=f"c{slot}", name=f"web-{slot}"), cluster="prod", application="shop")
        c.service, c.slot = "web", slot
        c.spec.image = image
        docker_id = await rt.create(c)
        await rt.start(docker_id)
        target = await rt.inspect(docker_id)
        assert target is not None
        results.append(await run_probe(pb.Probe(kind="cmd", cmd=["check"]), target, rt, now=1e12))
    assert [(r.status, r.message) for r in results] == [
        (ProbeStatus.SUCCESS, "command exited 0"),
        (ProbeStatus.FAILURE, "command exited 1"),
    ]
    stopped = observed(docker_id="missing")
    gone = await run_probe(pb.Probe(kind="cmd", cmd=["check"]), stopped, rt, now=1e12)
    assert gone.status is ProbeStatus.FAILURE and "no such container" in gone.message
