"""Run and supervise a single-member etcd as a child process (the one-machine default).

Why a child process rather than asking the operator to install a service: a fresh host
should need one command. The server starts the system ``etcd`` binary with its data
under the server's state directory, restarts it with backoff if it dies, and stops it
cleanly (SIGTERM, then wait) after the gRPC server has drained.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import signal
from pathlib import Path

import structlog

log = structlog.get_logger("ccs.etcd")

# etcd's default of 128 operations per transaction caps an application at about 125
# services (the API writes an application and all its services in one transaction). The
# limit guards etcd's apply loop; a request stays bounded by --max-request-bytes anyway,
# so the etcd we run ourselves allows more. An external etcd keeps its own setting
# (ccs-server --etcd-max-txn-ops).
EMBEDDED_MAX_TXN_OPS = 2048


class EmbeddedEtcd:
    def __init__(self, data_dir: Path, client_port: int = 23790, peer_port: int = 23800) -> None:
        self.data_dir = data_dir
        self.client_url = f"http://127.0.0.1:{client_port}"
        self.peer_url = f"http://127.0.0.1:{peer_port}"
        self._proc: asyncio.subprocess.Process | None = None
        self._supervisor: asyncio.Task[None] | None = None
        self._stopping = False
        self.restarts = 0

    def _argv(self) -> list[str]:
        binary = shutil.which("etcd")
        if binary is None:
            raise RuntimeError("the etcd binary is not installed (apt-get install etcd-server)")
        return [
            binary,
            "--name",
            "ccs-embedded",
            "--data-dir",
            str(self.data_dir),
            "--listen-client-urls",
            self.client_url,
            "--advertise-client-urls",
            self.client_url,
            "--listen-peer-urls",
            self.peer_url,
            "--initial-advertise-peer-urls",
            self.peer_url,
            "--initial-cluster",
            f"ccs-embedded={self.peer_url}",
            "--auto-compaction-mode",
            "revision",
            "--auto-compaction-retention",
            "100000",
            "--max-txn-ops",
            str(EMBEDDED_MAX_TXN_OPS),
            "--quota-backend-bytes",
            str(4 * 1024**3),
            "--log-level",
            "warn",
        ]

    async def _spawn(self) -> None:
        self.data_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        log_path = self.data_dir.parent / "etcd.log"
        out = open(log_path, "ab")  # noqa: SIM115, ASYNC230 - tiny, handed to the child
        try:
            self._proc = await asyncio.create_subprocess_exec(
                *self._argv(),
                stdout=out,
                stderr=out,
                env={**os.environ, "ETCD_UNSUPPORTED_ARCH": ""},
                start_new_session=True,
            )
        finally:
            out.close()
        log.info("embedded etcd started", pid=self._proc.pid, url=self.client_url, log=str(log_path))

    async def start(self) -> None:
        await self._spawn()
        self._supervisor = asyncio.create_task(self._supervise())

    async def _supervise(self) -> None:
        backoff = 0.5
        while not self._stopping:
            assert self._proc is not None
            code = await self._proc.wait()
            if self._stopping:
                return
            self.restarts += 1
            log.error("embedded etcd exited; restarting", code=code, restarts=self.restarts)
            await asyncio.sleep(backoff)
            backoff = min(backoff * 2, 10.0)
            with contextlib.suppress(Exception):
                await self._spawn()

    async def stop(self, grace: float = 15.0) -> None:
        self._stopping = True
        proc = self._proc
        if proc is not None and proc.returncode is None:
            proc.send_signal(signal.SIGTERM)
            try:
                await asyncio.wait_for(proc.wait(), grace)
            except TimeoutError:
                log.warning("embedded etcd did not stop in time; killing")
                proc.kill()
                await proc.wait()
            log.info("embedded etcd stopped", code=proc.returncode)
        if self._supervisor is not None:
            self._supervisor.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._supervisor
