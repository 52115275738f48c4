"""Shared fixtures: a real etcd and a real ccs-server, started once per test session.

Tests that share them use unique names (``unique``) so they never see each other's data.

Servers run TLS, the product's default: ``start_server`` gives each a node port of its own
(kept in its state dir, so a restart reuses it) and reads the CA it pinned (``STATE/ca.crt``,
the same CA as in the client config it wrote). ``TRUST`` maps each server's address to that
CA, so raw gRPC helpers (``tests.integration.grpc_helpers.channel``) verify the server without
every test passing it; SDK clients get it from ``ServerProc.client()``. A test that needs a
plaintext server passes ``--insecure`` in ``extra`` and says why.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

import ccs

ROOT = Path(__file__).resolve().parent.parent


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_port(port: int, timeout: float = 30.0, proc: subprocess.Popen[bytes] | None = None) -> None:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"process exited with {proc.returncode} before listening on {port}")
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.05)
    raise TimeoutError(f"nothing listening on port {port} after {timeout}s")


@dataclass
class EtcdProc:
    url: str
    data_dir: Path
    proc: subprocess.Popen[bytes]
    client_port: int
    peer_port: int

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            self.proc.wait(15)


def start_etcd(base: Path, name: str = "etcd") -> EtcdProc:
    if shutil.which("etcd") is None:
        pytest.skip("etcd binary not installed")
    cport, pport = free_port(), free_port()
    data = base / name
    url = f"http://127.0.0.1:{cport}"
    peer = f"http://127.0.0.1:{pport}"
    log = open(base / f"{name}.log", "wb")  # noqa: SIM115
    proc = subprocess.Popen(
        ["etcd", "--name", name, "--data-dir", str(data), "--listen-client-urls", url,
         "--advertise-client-urls", url, "--listen-peer-urls", peer,
         "--initial-advertise-peer-urls", peer, "--initial-cluster", f"{name}={peer}",
         "--log-level", "error"],
        stdout=log, stderr=log,
    )
    wait_port(cport, proc=proc)
    return EtcdProc(url, data, proc, cport, pport)


@pytest.fixture(scope="session")
def etcd(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EtcdProc]:
    """A real single-member etcd for the whole session."""
    proc = start_etcd(tmp_path_factory.mktemp("etcd"))
    yield proc
    proc.stop()


#: address -> the PEM CA that server's certificate chains to (absent: a --insecure server).
TRUST: dict[str, str] = {}
#: etcd URL -> the master key file of the first server started on it: every later server on
#: that etcd is given the same file, as an operator gives every replica (--master-key-file).
MASTER_KEYS: dict[str, Path] = {}
#: The same for the secrets key file (--secrets-key-file): the first server's, for every server
#: started on that etcd.
SECRETS_KEYS: dict[str, Path] = {}


@dataclass
class ServerProc:
    address: str
    token: str
    config_path: Path
    state_dir: Path
    proc: subprocess.Popen[bytes]
    log_path: Path
    etcd_url: str
    ca_pem: str | None = None  # None: started with --insecure
    node_port: int = 0
    http_url: str = ""  # the HTTPS endpoint's base URL ("" when --http-listen off)

    def client(self, token: str | None = None, **kw: Any) -> ccs.AsyncClient:
        """An SDK client to this server, verifying it against its CA (plaintext if --insecure)."""
        tls = self.ca_pem is not None
        return ccs.AsyncClient(self.address, self.token if token is None else token, tls=tls,
                               ca_pem=self.ca_pem, **kw)

    def stop(self, sig: int = signal.SIGTERM) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            return self.proc.wait(30)
        return int(self.proc.returncode)


def node_port_for(state_dir: Path) -> int:
    """The node port of the server in ``state_dir``: the same across restarts (agents keep it)."""
    path = state_dir / "test-node-port"
    if path.exists():
        return int(path.read_text())
    port = free_port()
    path.write_text(str(port))
    return port


def wait_serving(log_path: Path, offset: int, proc: subprocess.Popen[bytes], timeout: float = 60) -> None:
    """Wait until the server that logs to ``log_path`` (from ``offset`` on) says it serves.

    An open port is not enough: grpc accepts connections from the moment a port is added, before
    the server is started, and a call made in between fails ("Socket closed")."""
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        with log_path.open("rb") as f:
            f.seek(offset)
            if b'"ccs-server listening"' in f.read():
                return
        if proc.poll() is not None:
            raise RuntimeError(f"ccs-server exited with {proc.returncode} before serving; see {log_path}")
        time.sleep(0.05)
    raise RuntimeError(f"ccs-server did not say it serves within {timeout:.0f} s; see {log_path}")


def start_server(
    state_dir: Path, etcd_url: str | None, config_path: Path, port: int | None = None,
    extra: list[str] | None = None, expect_token: bool = True,
) -> ServerProc:
    port = port or free_port()
    state_dir.mkdir(parents=True, exist_ok=True)
    log_path = state_dir / "server.log"
    insecure = "--insecure" in (extra or [])
    node_port = 0 if insecure else node_port_for(state_dir)
    argv = [sys.executable, "-m", "controlplane.main", "--listen", f"127.0.0.1:{port}",
            "--state-dir", str(state_dir), "--client-config", str(config_path),
            "--log-format", "json", *(extra or [])]
    if not any(a.startswith("--http-listen") for a in extra or []):
        argv += ["--http-listen", "127.0.0.1:0"]  # not the default :7480: servers run side by side
    if not insecure:
        argv += ["--node-listen", f"127.0.0.1:{node_port}"]
    if "--metrics-listen" not in (extra or []):  # a free port: servers of one run must not share 9464
        argv += ["--metrics-listen", "127.0.0.1:0"]
    if etcd_url and "--master-key-file" not in (extra or []):
        argv += ["--master-key-file", str(MASTER_KEYS.setdefault(etcd_url, state_dir / "master.key"))]
    if etcd_url and "--secrets-key-file" not in (extra or []):
        argv += ["--secrets-key-file", str(SECRETS_KEYS.setdefault(etcd_url, state_dir / "secrets.key"))]
    if etcd_url:
        argv += ["--etcd", etcd_url]
    offset = log_path.stat().st_size if log_path.exists() else 0
    log = open(log_path, "ab")  # noqa: SIM115
    proc = subprocess.Popen(argv, stdout=log, stderr=log, cwd=ROOT)
    wait_port(port, timeout=60, proc=proc)
    wait_serving(log_path, offset, proc)
    token_file = state_dir / "admin.token"
    end = time.monotonic() + (30 if expect_token else 0)
    while not token_file.exists() and time.monotonic() < end:
        time.sleep(0.05)
    token = token_file.read_text().strip() if token_file.exists() else ""
    address = f"127.0.0.1:{port}"
    ca_pem = None
    if not insecure:
        ca_file = state_dir / "ca.crt"  # written before the ports are bound
        ca_pem = ca_file.read_text() if ca_file.exists() else None
        if ca_pem is not None:
            TRUST[address] = ca_pem
    return ServerProc(address, token, config_path, state_dir, proc, log_path, etcd_url or "", ca_pem,
                      node_port, http_url_in(log_path, offset))


def http_url_in(log_path: Path, offset: int) -> str:
    """The HTTPS endpoint's URL the server logged (from ``offset`` on), "" if it logged none."""
    with log_path.open("rb") as f:
        f.seek(offset)
        for line in f:
            if b'"HTTPS endpoint listening"' in line:
                return str(json.loads(line).get("url", ""))
    return ""


@pytest.fixture(scope="session")
def ccs_server(etcd: EtcdProc, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProc]:
    """A real ccs-server process on the session's etcd, with a client config written."""
    base = tmp_path_factory.mktemp("server")
    srv = start_server(base / "state", etcd.url, base / "config.yaml")
    if not srv.token:
        srv.stop()
        raise RuntimeError(f"server wrote no admin token; log:\n{srv.log_path.read_text()}")
    yield srv
    srv.stop()


@pytest.fixture
def unique() -> str:
    """A short unique DNS-label name for resources of one test."""
    return f"t{uuid.uuid4().hex[:10]}"


@pytest.fixture
def compose_corpus() -> Path:
    return ROOT / "tests" / "data" / "compose-corpus" / "awesome-compose"


os.environ.setdefault("CCS_CONFIG", "/nonexistent/ccs-test-config.yaml")
