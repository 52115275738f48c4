"""`Router`: runs HAProxy as the agent's child and keeps it on the latest routing table.

- Process: `haproxy -W -db -f haproxy.cfg` (master-worker, foreground) in its own session, so
  the agent's terminal signals do not reach it. Its pid is written to `haproxy.pid`; a start
  first ends an HAProxy a crashed agent left behind (it would hold the port).
- Apply (serialized by a lock): render; same routes as the applied config -> the runtime API
  changes weights and adds or deletes the servers of non-sticky backends (`server_changes`, no
  reload), and the config file is rewritten so a restart starts from the same place; if that
  is refused, or anything else changed, write `haproxy.cfg.new`, validate it with
  `haproxy -c`, move it in place and send SIGUSR2 to the master. The stats socket has
  `expose-fd listeners`, so the new worker takes over the listening sockets and no connection
  is refused; old workers finish their requests (at most `hard-stop-after`). The reload is
  confirmed when the socket answers with a new worker pid. An invalid config is refused
  (`RouterError`) and the running one stays.
- `submit(table)` is the agent's non-blocking entry: latest table wins, applied in order. A
  table that could not be applied is retried after `RETRY_DELAY` unless a newer one came, and
  after a reload that did not confirm the next apply reloads again (what runs is unknown).
- A dead HAProxy is restarted with backoff on the last applied config.
- Counters stay cumulative across reloads and restarts (see `stats.CounterBook`).
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import os
import signal
import time
from pathlib import Path
from typing import BinaryIO

import structlog

from ccs.v1 import resources_pb2

from ..backoff import Backoff
from .config import (
    RenderedConfig,
    RouterSettings,
    ServerChanges,
    ServerKey,
    ServerRef,
    render,
    routed_containers,
    server_changes,
)
from .runtime_api import RuntimeAPI, RuntimeAPIError
from .stats import CounterBook, Counters, per_container, raw_counters, router_stats

READY_TIMEOUT = 10.0
SLOW_APPLY = 0.5  # seconds: applies slower than this are logged at info
PID_POLL_TIMEOUT = 0.5  # one `show info` while waiting for a worker; a stuck one must not eat the wait
RETRY_DELAY = 1.0  # a table that could not be applied is tried again after this, unless a newer one came
STOP_TIMEOUT = 5.0
REAP_PERIOD = 2.0  # seconds between `del server` tries for servers that still hold connections


class RouterError(Exception):
    """HAProxy could not be started, refused a config, or did not reload."""


class ApplyResult(enum.Enum):
    UNCHANGED = "unchanged"
    WEIGHTS = "weights"  # runtime API only
    SERVERS = "servers"  # runtime API only, servers added or removed too
    RELOADED = "reloaded"


class Router:
    def __init__(
        self,
        settings: RouterSettings,
        *,
        binary: str = "haproxy",
        log: structlog.typing.FilteringBoundLogger | None = None,
    ) -> None:
        self.settings = settings
        self.binary = binary
        self.api = RuntimeAPI(settings.socket_path)
        self.applied: RenderedConfig | None = None
        self._proc: asyncio.subprocess.Process | None = None
        self._lock = asyncio.Lock()
        self._pending: resources_pb2.RoutingTable | None = None
        self._wake = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []
        self._counters = CounterBook()
        self._known: dict[ServerKey, ServerRef] = {}
        self._routed: frozenset[str] = frozenset()
        self._unrouted_at: dict[str, float] = {}  # container id -> monotonic time it left
        self._stopping = False
        self._unsure = False  # a reload was signalled and not confirmed
        self._retired: set[ServerKey] = set()  # removed at runtime, `del server` still refused
        self._log = log or structlog.get_logger("ccs.router")

    @property
    def applied_version(self) -> int | None:
        return self.applied.version if self.applied is not None else None

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc is not None and self._proc.returncode is None else None

    # ------------------------------------------------------------------ lifecycle

    async def start(self) -> None:
        """Start HAProxy (with no routes, or the last applied ones); raises RouterError."""
        self._stopping = False
        self.settings.state_dir.mkdir(parents=True, exist_ok=True)
        async with self._lock:
            await self._spawn(self.applied or render(resources_pb2.RoutingTable(), self.settings))
        self._tasks = [
            asyncio.create_task(self._watch(), name="router-watch"),
            asyncio.create_task(self._applier(), name="router-apply"),
            asyncio.create_task(self._reaper(), name="router-reap"),
        ]

    async def stop(self) -> None:
        """Soft-stop HAProxy (SIGUSR1: finish requests), then SIGTERM/SIGKILL after a while."""
        self._stopping = True
        for t in self._tasks:
            t.cancel()
        for t in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await t
        self._tasks = []
        proc, self._proc = self._proc, None
        if proc is None or proc.returncode is not None:
            return
        for sig in (signal.SIGUSR1, signal.SIGTERM, signal.SIGKILL):
            with contextlib.suppress(ProcessLookupError):
                proc.send_signal(sig)
            try:
                await asyncio.wait_for(proc.wait(), STOP_TIMEOUT)
                break
            except TimeoutError:
                continue
        with contextlib.suppress(FileNotFoundError):
            self._pidfile.unlink()

    # ------------------------------------------------------------------ drain

    def unrouted_for(self, container_id: str) -> float | None:
        """Seconds since the running HAProxy stopped sending new requests to ``container_id``
        (``inf`` if it never did), or None while it still does. The agent holds a draining
        container's stop on this (``converge.router_hold``)."""
        if container_id in self._routed and self.pid is not None:
            return None
        left = self._unrouted_at.get(container_id)
        return float("inf") if left is None else time.monotonic() - left

    def _set_applied(self, cfg: RenderedConfig) -> None:
        now = time.monotonic()
        routed = routed_containers(cfg)
        for cid in self._routed - routed:
            self._unrouted_at[cid] = now
        for cid in routed:
            self._unrouted_at.pop(cid, None)
        for cid, left in list(self._unrouted_at.items()):
            if now - left > 600:  # long stopped; keeps the map small
                del self._unrouted_at[cid]
        self._routed = routed
        self.applied = cfg
        self._unsure = False

    # ------------------------------------------------------------------ apply

    def submit(self, table: resources_pb2.RoutingTable) -> None:
        """Apply `table` in the background; a newer one replaces one not yet applied."""
        self._pending = table
        self._wake.set()

    async def apply(self, table: resources_pb2.RoutingTable) -> ApplyResult:
        """Make HAProxy route by `table` now. Raises RouterError (the running config stays)."""
        async with self._lock:
            new = render(table, self.settings)
            for problem in new.problems:
                self._log.warning("route skipped", problem=problem)
            if self._proc is None or self._proc.returncode is not None:
                raise RouterError("haproxy is not running")
            self._known.update(new.servers)
            # After a reload that did not confirm, what HAProxy runs is unknown: reload again.
            changes = None if self._unsure else server_changes(self.applied, new)
            if changes is not None and await self._change_at_runtime(changes):
                self._write(self.settings.config_path, new.text)  # a restart starts from here
                self._set_applied(new)
                if changes.added or changes.removed:
                    return ApplyResult.SERVERS
                return ApplyResult.WEIGHTS if changes else ApplyResult.UNCHANGED
            await self._reload(new)
            self._set_applied(new)
            return ApplyResult.RELOADED

    async def _change_at_runtime(self, changes: ServerChanges) -> bool:
        if not changes:
            return True
        if self._retired.intersection(changes.added):
            return False  # still in HAProxy under that name (see _reap): `add server` would fail
        try:
            await self.api.apply_servers(changes, self.settings.check_interval)
        except RuntimeAPIError as exc:
            # Whatever part ran is overwritten by the reload, which renders the whole table.
            self._log.warning("runtime change failed; reloading instead", error=str(exc))
            return False
        self._retired.update(changes.removed)  # deleted by the reaper, off the apply path
        return True

    async def _reap(self) -> None:
        """`del server` the servers that left the table (they sit in maintenance, getting no
        request). HAProxy refuses while connections are attached, idle pooled ones included,
        so what it refuses is tried again every `REAP_PERIOD`; a reload drops them all."""
        if not self._retired:
            return
        try:
            await self._collect_raw()  # the last reading of their counters
            for backend, server in sorted(self._retired):
                if await self.api.delete_server(backend, server):
                    self._retired.discard((backend, server))
        except RuntimeAPIError as exc:
            self._log.debug("server delete failed; trying again later", error=str(exc))

    async def _reaper(self) -> None:
        while True:
            await asyncio.sleep(REAP_PERIOD)
            if self._retired:
                async with self._lock:
                    await self._reap()

    async def _reload(self, new: RenderedConfig) -> None:
        await self._validate(new)
        with contextlib.suppress(RuntimeAPIError):
            await self._collect_raw()  # last reading of the old worker's counters
        old_pid = await self._worker_pid()
        os.replace(self._candidate, self.settings.config_path)
        assert self._proc is not None
        self._unsure = True
        self._proc.send_signal(signal.SIGUSR2)
        deadline = time.monotonic() + READY_TIMEOUT
        while time.monotonic() < deadline:
            if self._proc.returncode is not None:
                raise RouterError(f"haproxy exited during reload (code {self._proc.returncode})")
            pid = await self._worker_pid()
            if pid is not None and pid != old_pid:
                self._counters.reset_expected()
                self._retired.clear()
                self._log.info("router reloaded", version=new.version, worker=pid)
                return
            await asyncio.sleep(0.05)
        raise RouterError(f"haproxy did not reload within {READY_TIMEOUT:.0f}s")

    async def _applier(self) -> None:
        while True:
            await self._wake.wait()
            self._wake.clear()
            table, self._pending = self._pending, None
            if table is None:
                continue
            try:
                t0 = time.monotonic()
                result = await self.apply(table)
                took = time.monotonic() - t0
                # A slow apply delays every weight change behind it (drains wait on it too).
                log = self._log.info if took > SLOW_APPLY else self._log.debug
                log("routes applied", version=table.version, result=result.value, took=round(took, 3))
            except (RouterError, RuntimeAPIError, OSError) as exc:
                self._log.error("routes not applied; retrying", version=table.version, error=str(exc))
                # Without a retry the router would stay on the old table until the next change.
                await asyncio.sleep(RETRY_DELAY)
                if self._pending is None:
                    self._pending = table
                self._wake.set()

    # ------------------------------------------------------------------ stats

    async def collect(self, *, node: str = "") -> resources_pb2.RouterStats:
        """Cumulative per-container counters and the applied routing version."""
        async with self._lock:  # never mid-reload: the counter reset must be seen exactly once
            totals = await self._collect_raw()
        return router_stats(
            per_container(totals, self._known), node=node, version=self.applied_version or 0, now=time.time()
        )

    async def _collect_raw(self) -> dict[ServerKey, Counters]:
        return self._counters.observe(raw_counters(await self.api.show_stat()))

    # ------------------------------------------------------------------ process

    @property
    def _pidfile(self) -> Path:
        return self.settings.state_dir / "haproxy.pid"

    @property
    def _candidate(self) -> Path:
        return self.settings.state_dir / "haproxy.cfg.new"

    async def _validate(self, cfg: RenderedConfig) -> None:
        self._write(self._candidate, cfg.text)
        proc = await asyncio.create_subprocess_exec(
            self.binary, "-c", "-q", "-f", str(self._candidate),
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
        )
        out, _ = await proc.communicate()
        if proc.returncode != 0:
            raise RouterError(f"haproxy refused the config (version {cfg.version}): {out.decode().strip()}")

    async def _spawn(self, cfg: RenderedConfig) -> None:
        await self._validate(cfg)
        os.replace(self._candidate, self.settings.config_path)
        await self._end_leftover()
        with contextlib.suppress(FileNotFoundError):
            self.settings.socket_path.unlink()
        log = self._open_log()
        try:
            self._proc = await asyncio.create_subprocess_exec(
                self.binary, "-W", "-db", "-f", str(self.settings.config_path),
                stdin=asyncio.subprocess.DEVNULL, stdout=log, stderr=log, start_new_session=True,
            )
        finally:
            log.close()
        self._pidfile.write_text(str(self._proc.pid))
        self._counters.reset_expected()
        self._retired.clear()
        deadline = time.monotonic() + READY_TIMEOUT
        while await self._worker_pid() is None:
            if self._proc.returncode is not None:
                raise RouterError(f"haproxy exited at start (code {self._proc.returncode}): {self._log_tail()}")
            if time.monotonic() > deadline:
                raise RouterError(f"haproxy did not answer on {self.settings.socket_path}")
            await asyncio.sleep(0.05)
        self._set_applied(cfg)
        self._known.update(cfg.servers)
        self._log.info("router started", pid=self._proc.pid, port=self.settings.port, version=cfg.version)

    async def _watch(self) -> None:
        backoff = Backoff(base=0.5, cap=10.0)
        while True:
            proc = self._proc
            assert proc is not None
            code = await proc.wait()
            if self._stopping:
                return
            self._log.error("haproxy exited; restarting", code=code, output=self._log_tail())
            while True:
                await asyncio.sleep(backoff.next())
                try:
                    async with self._lock:
                        await self._spawn(self.applied or render(resources_pb2.RoutingTable(), self.settings))
                    backoff.reset()
                    break
                except (RouterError, OSError) as exc:
                    self._log.error("haproxy restart failed", error=str(exc))

    async def _worker_pid(self) -> int | None:
        try:
            pid = (await asyncio.wait_for(self.api.show_info(), PID_POLL_TIMEOUT)).get("Pid", "")
        except (RuntimeAPIError, TimeoutError):
            return None
        return int(pid) if pid.isdigit() else None

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

    def _open_log(self) -> BinaryIO:
        return open(self.settings.state_dir / "haproxy.log", "ab")  # the caller closes it

    def _log_tail(self) -> str:
        try:
            return (self.settings.state_dir / "haproxy.log").read_text(errors="replace")[-500:].strip()
        except OSError:
            return ""

    @staticmethod
    def _write(path: Path, text: str) -> None:
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
