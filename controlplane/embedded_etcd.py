"""Run and supervise a single-member etcd as a child process (the one-machine default).

Why a child process rather than asking the operator to install a service: a fresh host
should need one command. The server starts the system ``etcd`` binary with its data
under the server's state directory, restarts it with backoff if it dies, and stops it
cleanly (SIGTERM, then wait) after the gRPC server has drained.

The etcd lives and dies with its server:

- It is started under ``setpriv --pdeathsig KILL`` (util-linux, always on Debian), so the kernel
  kills it when the server dies, even by SIGKILL. Why not ``preexec_fn`` + ``prctl``: running
  Python between fork and exec in a threaded process (gRPC has threads) can deadlock, and
  setpriv is the same system call done by a well-kept tool. etcd is crash-safe (WAL + fsync).
- Before starting, an etcd still running on this data directory whose parent is not a ccs
  server (an orphan of a server killed before this rule, or by a race) is stopped, with a
  warning naming its pid. One owned by a live server is refused with an error. A port held by
  anything else is an error too: the server never talks to an etcd it did not start.
- The restart backoff (:class:`RestartDelay`) starts again from its base after a run that was
  healthy for a while, so one crash after days of uptime is not treated like a crash loop.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import signal
import socket
import time
from dataclasses import dataclass, field
from pathlib import Path

import structlog

log = structlog.get_logger("ccs.etcd")

# etcd's default of 128 operations per transaction caps an application at about 125
# services (the API writes an application and all its services in one transaction). The
# limit guards etcd's apply loop; a request stays bounded by --max-request-bytes anyway,
# so the etcd we run ourselves allows more. An external etcd keeps its own setting
# (ccs-server --etcd-max-txn-ops).
EMBEDDED_MAX_TXN_OPS = 2048

#: A run at least this long counts as healthy: the next failure restarts after ``base`` again.
HEALTHY_AFTER = 30.0
SERVER_MARKERS = ("ccs-server", "controlplane.main")
#: The embedded etcd's member name (a restore recreates the member under it).
MEMBER_NAME = "ccs-embedded"
#: Its peer port is the client port + this (``ccs-server --embedded-etcd-port``).
PEER_PORT_OFFSET = 10


@dataclass
class RestartDelay:
    """How long to wait before restarting etcd, as a pure function of how long each run lasted.

    Doubles from ``base`` to ``cap`` while runs keep failing quickly; a run that lasted at least
    ``healthy_after`` seconds resets it, so the delay reflects recent failures only.
    """

    base: float = 0.5
    cap: float = 10.0
    healthy_after: float = HEALTHY_AFTER
    _next: float = field(init=False)

    def __post_init__(self) -> None:
        if not 0 < self.base <= self.cap:
            raise ValueError(f"base: must be > 0 and <= cap ({self.cap}), got {self.base}")
        self._next = self.base

    def after_exit(self, ran_for: float) -> float:
        """The delay before the next start, given how many seconds the run that just ended lasted."""
        if ran_for >= self.healthy_after:
            self._next = self.base
        delay = self._next
        self._next = min(self._next * 2, self.cap)
        return delay


def _cmdline(pid: int) -> list[str]:
    try:
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return []
    return [a.decode(errors="replace") for a in raw.split(b"\0") if a]


def _parent(pid: int) -> int:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return 0
    return int(stat.rsplit(")", 1)[1].split()[1])  # field 4, after "pid (comm) state"


def etcds_on(data_dir: Path) -> list[int]:
    """Pids of etcd processes serving ``data_dir`` (found by their command line)."""
    want = str(data_dir)
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        argv = _cmdline(int(entry.name))
        if argv and Path(argv[0]).name == "etcd" and any(
            a == want and i > 0 and argv[i - 1] == "--data-dir" for i, a in enumerate(argv)
        ):
            found.append(int(entry.name))
    return found


def _port_in_use(port: int) -> bool:
    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return True
    return False


class EmbeddedEtcd:
    def __init__(self, data_dir: Path, client_port: int = 23790, peer_port: int = 23800) -> None:
        self.data_dir = data_dir
        self.client_port, self.peer_port = client_port, peer_port
        self.client_url = f"http://127.0.0.1:{client_port}"
        self.peer_url = f"http://127.0.0.1:{peer_port}"
        self.delays = RestartDelay()
        self._started_at = 0.0
        self._proc: asyncio.subprocess.Process | None = None
        self._supervisor: asyncio.Task[None] | None = None
        self._stopping = False
        self.restarts = 0

    def _argv(self) -> list[str]:
        binary = shutil.which("etcd")
        if binary is None:
            raise RuntimeError("the etcd binary is not installed (apt-get install etcd-server)")
        # Dies with the server (module docstring); without setpriv, the start-up check still
        # stops what a killed server left behind.
        setpriv = shutil.which("setpriv")
        prefix = [setpriv, "--pdeathsig", "KILL", "--"] if setpriv else []
        return [
            *prefix,
            binary,
            "--name",
            MEMBER_NAME,
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
            f"{MEMBER_NAME}={self.peer_url}",
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
        self._started_at = time.monotonic()
        log.info("embedded etcd started", pid=self._proc.pid, url=self.client_url, log=str(log_path))

    async def start(self) -> None:
        await self._clear_the_way()
        await self._spawn()
        self._supervisor = asyncio.create_task(self._supervise())

    async def _clear_the_way(self) -> None:
        """Stop an orphaned etcd on our data dir; refuse a live server's, or a taken port."""
        for pid in etcds_on(self.data_dir):
            parent = _parent(pid)
            owner = " ".join(_cmdline(parent))
            if parent > 1 and any(m in owner for m in SERVER_MARKERS):
                raise RuntimeError(
                    f"embedded etcd: {self.data_dir} is in use by etcd pid {pid} of another running "
                    f"ccs-server (pid {parent}); stop that server or use another --state-dir"
                )
            log.warning("stopping an orphaned embedded etcd left by an earlier server",
                        pid=pid, parent=parent, data_dir=str(self.data_dir))
            await _terminate(pid)
        for port in (self.client_port, self.peer_port):
            if _port_in_use(port):
                raise RuntimeError(
                    f"embedded etcd: port 127.0.0.1:{port} is already in use by another process; "
                    "stop it or choose --embedded-etcd-port"
                )

    async def _supervise(self) -> None:
        while not self._stopping:
            assert self._proc is not None
            code = await self._proc.wait()
            if self._stopping:
                return
            self.restarts += 1
            ran_for = time.monotonic() - self._started_at
            delay = self.delays.after_exit(ran_for)
            log.error("embedded etcd exited; restarting", code=code, restarts=self.restarts,
                      ran_for=round(ran_for, 1), retry_in=delay, last_output=self._log_tail())
            await asyncio.sleep(delay)
            try:
                await self._spawn()
            except Exception as e:  # e.g. the binary was removed: keep trying, say why
                log.error("embedded etcd could not be started", error=str(e))
                self._started_at = time.monotonic()

    def _log_tail(self, size: int = 400) -> str:
        try:
            with open(self.data_dir.parent / "etcd.log", "rb") as f:
                f.seek(0, os.SEEK_END)
                f.seek(max(0, f.tell() - size))
                return f.read().decode(errors="replace").strip()
        except OSError:
            return ""

    async def stop(self, grace: float = 15.0) -> None:
        self._stopping = True
        proc = self._proc
        if proc is not None and proc.returncode is None:
            proc.send_signal(signal.SIGTERM)
            try:
                async with asyncio.timeout(grace):
                    await proc.wait()
            except TimeoutError:
                log.warning("embedded etcd did not stop in time; killing")
                proc.kill()
                await proc.wait()
            log.info("embedded etcd stopped", code=proc.returncode)
        if self._supervisor is not None:
            self._supervisor.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._supervisor


async def _terminate(pid: int, grace: float = 10.0) -> None:
    """SIGTERM a process that is not our child, wait for it to go, then SIGKILL."""
    for sig, wait in ((signal.SIGTERM, grace), (signal.SIGKILL, grace)):
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, sig)
        for _ in range(int(wait * 10)):
            if _gone(pid):
                return
            await asyncio.sleep(0.1)
    raise RuntimeError(f"embedded etcd: the orphaned etcd pid {pid} did not exit")


def _gone(pid: int) -> bool:
    """True once ``pid`` has exited (a zombie waiting for its reaper counts as gone)."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] == "Z"
    except (OSError, IndexError):
        return True
