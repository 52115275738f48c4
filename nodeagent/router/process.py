"""`HAProxyProcess`: the HAProxy child process itself, apart from what it is told to route.

- Start: `haproxy -W -db -f haproxy.cfg` (master-worker, foreground) in its own session, so
  the agent's terminal signals do not reach it. Its pid is written to `haproxy.pid`; a start
  first ends an HAProxy a crashed agent left behind with the same config (it would hold the
  port). Started means answering on the stats socket, not merely forked.
- Every config is validated with `haproxy -c` as `haproxy.cfg.new` before it replaces the
  live file, so an invalid one never runs.
- Reload: SIGUSR2 to the master; the stats socket has `expose-fd listeners`, so the new
  worker takes over the listening sockets and no connection is refused. The reload is
  confirmed when the socket answers with a new worker pid.
- Stop: SIGUSR1 (soft stop: finish requests), then SIGTERM, then SIGKILL.

:class:`~nodeagent.router.supervisor.Router` decides when to do which, under its lock; this
module knows only the process, the files and the signals.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import time
from pathlib import Path
from typing import BinaryIO

import structlog

from .config import RenderedConfig, RouterSettings
from .runtime_api import RuntimeAPI, RuntimeAPIError

READY_TIMEOUT = 10.0
PID_POLL_TIMEOUT = 0.5  # one `show info` while waiting for a worker; a stuck one must not eat the wait
STOP_TIMEOUT = 5.0


class RouterError(Exception):
    """HAProxy could not be started, refused a config, or did not reload."""


class HAProxyProcess:
    def __init__(
        self, settings: RouterSettings, api: RuntimeAPI, binary: str, log: structlog.typing.FilteringBoundLogger
    ) -> None:
        self.settings = settings
        self.api = api
        self.binary = binary
        self._log = log
        self.proc: asyncio.subprocess.Process | None = None

    @property
    def pid(self) -> int | None:
        return self.proc.pid if self.proc is not None and self.proc.returncode is None else None

    @property
    def _pidfile(self) -> Path:
        return self.settings.state_dir / "haproxy.pid"

    @property
    def _candidate(self) -> Path:
        return self.settings.state_dir / "haproxy.cfg.new"

    @property
    def _logfile(self) -> Path:
        return self.settings.state_dir / "haproxy.log"

    async def validate(self, cfg: RenderedConfig) -> None:
        """Write ``cfg`` as the candidate and have `haproxy -c` check it; raises RouterError."""
        write_atomically(self._candidate, cfg.text)
        proc = await asyncio.create_subprocess_exec(
            self.binary, "-c", "-q", "-f", str(self._candidate),
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
        )
        out, _ = await proc.communicate()
        if proc.returncode != 0:
            raise RouterError(f"haproxy refused the config (version {cfg.version}): {out.decode().strip()}")

    async def start(self, cfg: RenderedConfig) -> None:
        """Validate ``cfg``, make it the live config and start HAProxy on it; return once it
        answers on its socket. Raises RouterError."""
        await self.validate(cfg)
        os.replace(self._candidate, self.settings.config_path)
        await self._end_leftover()
        with contextlib.suppress(FileNotFoundError):
            self.settings.socket_path.unlink()
        log = self._open_log()
        try:
            self.proc = await asyncio.create_subprocess_exec(
                self.binary, "-W", "-db", "-f", str(self.settings.config_path),
                stdin=asyncio.subprocess.DEVNULL, stdout=log, stderr=log, start_new_session=True,
            )
        finally:
            log.close()
        self._pidfile.write_text(str(self.proc.pid))
        deadline = time.monotonic() + READY_TIMEOUT
        while await self.worker_pid() is None:
            if self.proc.returncode is not None:
                raise RouterError(f"haproxy exited at start (code {self.proc.returncode}): {self.log_tail()}")
            if time.monotonic() > deadline:
                raise RouterError(f"haproxy did not answer on {self.settings.socket_path}")
            await asyncio.sleep(0.05)

    async def reload(self) -> int:
        """Make the validated candidate the live config and have the master reload it; return
        the new worker's pid once it answers. Raises RouterError."""
        old_pid = await self.worker_pid()
        os.replace(self._candidate, self.settings.config_path)
        proc = self.proc
        assert proc is not None
        proc.send_signal(signal.SIGUSR2)
        deadline = time.monotonic() + READY_TIMEOUT
        while time.monotonic() < deadline:
            if proc.returncode is not None:
                raise RouterError(f"haproxy exited during reload (code {proc.returncode})")
            pid = await self.worker_pid()
            if pid is not None and pid != old_pid:
                return pid
            await asyncio.sleep(0.05)
        raise RouterError(f"haproxy did not reload within {READY_TIMEOUT:.0f}s")

    async def wait(self) -> int:
        """Until the running HAProxy exits; its exit code."""
        assert self.proc is not None
        return await self.proc.wait()

    async def stop(self) -> None:
        """Soft-stop HAProxy (SIGUSR1: finish requests), then SIGTERM/SIGKILL after a while."""
        proc, self.proc = self.proc, None
        if proc is None or proc.returncode is not None:
            return
        for sig in (signal.SIGUSR1, signal.SIGTERM, signal.SIGKILL):
            with contextlib.suppress(ProcessLookupError):
                proc.send_signal(sig)
            try:
                async with asyncio.timeout(STOP_TIMEOUT):
                    await proc.wait()
                break
            except TimeoutError:
                continue
        with contextlib.suppress(FileNotFoundError):
            self._pidfile.unlink()

    async def worker_pid(self) -> int | None:
        try:
            async with asyncio.timeout(PID_POLL_TIMEOUT):
                pid = (await self.api.show_info()).get("Pid", "")
        except (RuntimeAPIError, TimeoutError):
            return None
        return int(pid) if pid.isdigit() else None

    def _open_log(self) -> BinaryIO:
        return open(self._logfile, "ab")  # the caller closes it

    def log_tail(self) -> str:
        try:
            return self._logfile.read_text(errors="replace")[-500:].strip()
        except OSError:
            return ""

    async def _end_leftover(self) -> None:
        """Kill an HAProxy a previous agent started with this config (it would hold the port)."""
        pid = self._leftover_pid()
        if pid is None:
            return
        self._log.warning("ending a leftover haproxy", pid=pid)
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGTERM)
        for _ in range(int(STOP_TIMEOUT / 0.05)):
            if not _alive(pid):
                break
            await asyncio.sleep(0.05)

    def _leftover_pid(self) -> int | None:
        try:
            pid = int(self._pidfile.read_text().strip())
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
        except (OSError, ValueError):
            return None
        ours = cmdline[0].endswith(b"haproxy") and str(self.settings.config_path).encode() in cmdline
        return pid if ours else None


def write_atomically(path: Path, text: str) -> None:
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(text)
    os.replace(tmp, path)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
