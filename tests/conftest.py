"""Shared fixtures: a real etcd and a real ccs-server, started once per test session.

Tests that share them use unique names (``unique``) so they never see each other's data.
"""

from __future__ import annotations

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

import pytest

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


@dataclass
class ServerProc:
    address: str
    token: str
    config_path: Path
    state_dir: Path
    proc: subprocess.Popen[bytes]
    log_path: Path
    etcd_url: str

    def stop(self, sig: int = signal.SIGTERM) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            return self.proc.wait(30)
        return int(self.proc.returncode)


def start_server(
    state_dir: Path, etcd_url: str | None, config_path: Path, port: int | None = None,
    extra: list[str] | None = None, expect_token: bool = True,
) -> ServerProc:
    port = port or free_port()
    state_dir.mkdir(parents=True, exist_ok=True)
    log_path = state_dir / "server.log"
    argv = [sys.executable, "-m", "controlplane.main", "--listen", f"127.0.0.1:{port}",
            "--state-dir", str(state_dir), "--client-config", str(config_path),
            "--log-format", "json", *(extra or [])]
    if etcd_url:
        argv += ["--etcd", etcd_url]
    log = open(log_path, "ab")  # noqa: SIM115
    proc = subprocess.Popen(argv, stdout=log, stderr=log, cwd=ROOT)
    wait_port(port, timeout=60, proc=proc)
    token_file = state_dir / "admin.token"
    end = time.monotonic() + (30 if expect_token else 0)
    while not token_file.exists() and time.monotonic() < end:
        time.sleep(0.05)
    token = token_file.read_text().strip() if token_file.exists() else ""
    return ServerProc(f"127.0.0.1:{port}", token, config_path, state_dir, proc, log_path,
                      etcd_url or "")


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
