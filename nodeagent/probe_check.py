"""One check of an agent-side probe (the Alibaba Cloud `aliyun.probe.*` model): HTTP, TCP, command.

Docker healthchecks run inside the container; these run from the agent, the way a load
balancer sees the service, so they also catch a port that is published but not answering.

- http: GET http://ADDRESS:PORT/PATH; 2xx and 3xx pass (redirects are not followed: a
  redirect already proves the server answers).
- tcp: a TCP connect succeeds.
- cmd: the command exits 0 inside the container (through the runtime's exec).

The HTTP client is ~20 lines on asyncio streams rather than a dependency: one request, one
status line, nothing else is read. Results are plain values: :mod:`nodeagent.probe_monitor`
runs the checks periodically and counts them into HEALTHY/UNHEALTHY verdicts.
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import os
from collections.abc import Sequence
from dataclasses import dataclass

from ccs.v1 import resources_pb2
from nodeagent.runtime import naming
from nodeagent.runtime.naming import DEFAULT_NETWORK, network_name
from nodeagent.runtime.types import ExecResult, Observed, Runtime

DEFAULT_TIMEOUT = 1.0  # seconds, when the probe leaves timeout_seconds at 0 (as Kubernetes)


class ProbeStatus(enum.Enum):
    SUCCESS = "success"
    FAILURE = "failure"
    WAITING = "waiting"  # initial_delay_seconds has not passed since the container started


@dataclass(frozen=True, slots=True)
class ProbeResult:
    status: ProbeStatus
    message: str

    @property
    def ok(self) -> bool:
        return self.status is ProbeStatus.SUCCESS


class ProbeError(ValueError):
    """The probe definition is unusable; names the field and why."""


def validate(probe: resources_pb2.Probe) -> None:
    """Raise ProbeError when the probe cannot be run."""
    if probe.kind not in ("http", "tcp", "cmd"):
        raise ProbeError(f"probe.kind: must be http, tcp or cmd, got {probe.kind!r}")
    if probe.kind in ("http", "tcp") and not 1 <= probe.port <= 65535:
        raise ProbeError(f"probe.port: must be a port in 1-65535 for a {probe.kind} probe, got {probe.port}")
    if probe.kind == "http" and probe.path and not probe.path.startswith("/"):
        raise ProbeError(f"probe.path: must start with '/', got {probe.path!r}")
    if probe.kind == "cmd" and not probe.cmd:
        raise ProbeError("probe.cmd: a cmd probe needs a command")


def target_address(observed: Observed, port: int, *, cluster: str, app: str) -> tuple[str, int]:
    """Where to reach container `port` from the agent: its IP on one of the application's
    networks on this node (the "default" one first: every bridge is local to the agent), else
    the published host port (0.0.0.0 meaning any local address); a container on the node's
    network (network_mode: host) listens on the agent's own addresses."""
    ip = observed.networks.get(network_name(cluster, app), "") or observed.addresses.get(DEFAULT_NETWORK, "") or next(
        (a for _, a in sorted(observed.addresses.items()) if a), "")
    if ip:
        return ip, port
    if "host" in observed.networks:
        return "127.0.0.1", port
    for binding in observed.ports:
        if binding.target == port and binding.host_port and ":" not in binding.host_ip:
            host = binding.host_ip if binding.host_ip not in ("", "0.0.0.0") else "127.0.0.1"
            return host, binding.host_port
    raise ProbeError(f"probe.port: container {observed.name} has no address for port {port}")


async def run_probe(
    probe: resources_pb2.Probe,
    observed: Observed,
    runtime: Runtime,
    *,
    now: float,
) -> ProbeResult:
    """Run one probe against a running container; never raises for a failing target."""
    validate(probe)
    started = observed.started_at
    if started is not None and now < started + probe.initial_delay_seconds:
        return ProbeResult(ProbeStatus.WAITING, f"initial delay of {probe.initial_delay_seconds}s")
    timeout = float(probe.timeout_seconds) or DEFAULT_TIMEOUT
    cluster = observed.labels.get(naming.CLUSTER, "")
    app = observed.labels.get(naming.APP, "")
    try:
        if probe.kind == "cmd":
            result = await runtime.exec(observed.docker_id, probe.cmd, timeout_seconds=timeout)
            return _from_exec(result)
        host, port = target_address(observed, probe.port, cluster=cluster, app=app)
        if probe.kind == "tcp":
            return await tcp_probe(host, port, timeout_seconds=timeout)
        return await http_probe(host, port, probe.path or "/", timeout_seconds=timeout)
    except ProbeError as exc:
        return ProbeResult(ProbeStatus.FAILURE, str(exc))
    except TimeoutError:
        return ProbeResult(ProbeStatus.FAILURE, f"{probe.kind} probe timed out after {timeout:g}s")
    except Exception as exc:  # a runtime error is a failed probe, not an agent crash
        return ProbeResult(ProbeStatus.FAILURE, f"{probe.kind} probe: {exc}")


def _from_exec(result: ExecResult) -> ProbeResult:
    tail = result.output.decode(errors="replace").strip()[-200:]
    if result.exit_code == 0:
        return ProbeResult(ProbeStatus.SUCCESS, "command exited 0")
    return ProbeResult(ProbeStatus.FAILURE, f"command exited {result.exit_code}: {tail}".rstrip(": "))


async def tcp_probe(host: str, port: int, *, timeout_seconds: float) -> ProbeResult:
    """Succeeds when a TCP connection to host:port opens within `timeout_seconds`."""
    try:
        async with asyncio.timeout(timeout_seconds):
            _, writer = await asyncio.open_connection(host, port)
    except TimeoutError:
        return ProbeResult(ProbeStatus.FAILURE, f"tcp {host}:{port}: no answer in {timeout_seconds:g}s")
    except OSError as exc:
        return ProbeResult(ProbeStatus.FAILURE, f"tcp {host}:{port}: {_why(exc)}")
    writer.close()
    await _closed(writer)
    return ProbeResult(ProbeStatus.SUCCESS, f"tcp {host}:{port} open")


async def http_probe(host: str, port: int, path: str, *, timeout_seconds: float) -> ProbeResult:
    """GET path with HTTP/1.0; 2xx/3xx succeed. Reads only the status line."""
    url = f"http://{host}:{port}{path}"
    request = (
        f"GET {path} HTTP/1.0\r\nHost: {host}:{port}\r\nUser-Agent: ccs-probe\r\n"
        "Accept: */*\r\nConnection: close\r\n\r\n"
    ).encode()
    try:
        async with asyncio.timeout(timeout_seconds):
            reader, writer = await asyncio.open_connection(host, port)
            try:
                writer.write(request)
                await writer.drain()
                status_line = await reader.readline()
            finally:
                writer.close()
                await _closed(writer)
    except TimeoutError:
        return ProbeResult(ProbeStatus.FAILURE, f"GET {url}: no answer in {timeout_seconds:g}s")
    except OSError as exc:
        return ProbeResult(ProbeStatus.FAILURE, f"GET {url}: {_why(exc)}")
    code = _status_code(status_line)
    if code is None:
        return ProbeResult(ProbeStatus.FAILURE, f"GET {url}: not an HTTP response: {status_line[:60]!r}")
    if 200 <= code < 400:
        return ProbeResult(ProbeStatus.SUCCESS, f"GET {url}: {code}")
    return ProbeResult(ProbeStatus.FAILURE, f"GET {url}: {code}")


def _why(exc: OSError) -> str:
    """asyncio words a refused connect as "Connect call failed (...)"; say what it means."""
    if isinstance(exc, ConnectionRefusedError):
        return "connection refused"
    return os.strerror(exc.errno) if exc.errno else str(exc)


def _status_code(line: bytes) -> int | None:
    parts: Sequence[bytes] = line.split(None, 2)
    if len(parts) < 2 or not parts[0].startswith(b"HTTP/") or not parts[1].isdigit():
        return None
    return int(parts[1])


async def _closed(writer: asyncio.StreamWriter) -> None:
    with contextlib.suppress(OSError):  # a reset while closing does not change the verdict
        await writer.wait_closed()
