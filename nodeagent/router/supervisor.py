"""`Router`: runs HAProxy as the agent's child and keeps it on the latest routing table.

- Process (`process.HAProxyProcess`): start, validate, reload, stop; the files and signals.
- Apply (serialized by a lock): render; same routes as the applied config -> the runtime API
  changes weights and adds or deletes the servers of non-sticky backends (`server_changes`, no
  reload), and the config file is rewritten so a restart starts from the same place; if that
  is refused, or anything else changed, a validated reload (old workers finish their requests,
  at most `hard-stop-after`). An invalid config is refused (`RouterError`) and the running one
  stays.
- `submit(table)` is the agent's non-blocking entry: latest table wins, applied in order. A
  table that could not be applied is retried after `RETRY_DELAY` unless a newer one came, and
  after a reload that did not confirm the next apply reloads again (what runs is unknown).
- A dead HAProxy is restarted with backoff on the last applied config.
- Counters stay cumulative across reloads and restarts (see `stats.CounterBook`).
- HTTPS: `submit(table, certificates)` also takes the material of the certificates the table
  names (secret version -> PEM). The files are written before any validate or reload; a new
  version of a domain's certificate (same structure) is replaced at runtime
  (`certificate_files.replace_at_runtime`), no reload.
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import time
from collections.abc import Mapping

import structlog

from ccs.v1 import resources_pb2

from ..backoff import Backoff
from ..metrics import AgentMetrics
from .certificate_files import MissingCertificate, remove_files, replace_at_runtime, write_files
from .config import (
    RenderedConfig,
    RouterSettings,
    ServerChanges,
    ServerKey,
    ServerRef,
    certificate_changes,
    render,
    routed_containers,
    server_changes,
)
from .https import CertificateRef
from .process import HAProxyProcess, RouterError, write_atomically
from .runtime_api import RuntimeAPI, RuntimeAPIError
from .stats import CounterBook, Counters, per_container, raw_counters, router_stats

SLOW_APPLY = 0.5  # seconds: applies slower than this are logged at info
RETRY_DELAY = 1.0  # a table that could not be applied is tried again after this, unless a newer one came
REAP_PERIOD = 2.0  # seconds between `del server` tries for servers that still hold connections

__all__ = ["ApplyResult", "Router", "RouterError"]


class ApplyResult(enum.Enum):
    UNCHANGED = "unchanged"
    WEIGHTS = "weights"  # runtime API only
    SERVERS = "servers"  # runtime API only, servers added or removed too
    CERTIFICATES = "certificates"  # runtime API only, a certificate replaced too
    RELOADED = "reloaded"


class Router:
    def __init__(
        self,
        settings: RouterSettings,
        *,
        binary: str = "haproxy",
        log: structlog.typing.FilteringBoundLogger | None = None,
        metrics: AgentMetrics | None = None,
    ) -> None:
        self.settings = settings
        self.metrics = metrics
        self.api = RuntimeAPI(settings.socket_path)
        self._log = log or structlog.get_logger("ccs.router")
        self.process = HAProxyProcess(settings, self.api, binary, self._log)
        self.applied: RenderedConfig | None = None
        self._lock = asyncio.Lock()
        self._pending: resources_pb2.RoutingTable | None = None
        self._pending_material: Mapping[CertificateRef, bytes] = {}
        self._wake = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []
        self._counters = CounterBook()
        self._known: dict[ServerKey, ServerRef] = {}
        self._routed: frozenset[str] = frozenset()
        self._unrouted_at: dict[str, float] = {}  # container id -> monotonic time it left
        self._stopping = False
        self._unsure = False  # a reload was signalled and not confirmed
        self._retired: set[ServerKey] = set()  # removed at runtime, `del server` still refused

    @property
    def applied_version(self) -> int | None:
        return self.applied.version if self.applied is not None else None

    @property
    def pid(self) -> int | None:
        return self.process.pid

    # ------------------------------------------------------------------ lifecycle

    async def start(self) -> None:
        """Start HAProxy (with no routes, or the last applied ones); raises RouterError."""
        self._stopping = False
        self.settings.state_dir.mkdir(parents=True, exist_ok=True)
        async with self._lock:
            await self._spawn(self.applied or self._empty())
        self._tasks = [
            asyncio.create_task(self._watch(), name="router-watch"),
            asyncio.create_task(self._applier(), name="router-apply"),
            asyncio.create_task(self._reaper(), name="router-reap"),
        ]

    async def stop(self) -> None:
        """Stop the loops, then HAProxy (it finishes its requests first; see `HAProxyProcess.stop`)."""
        self._stopping = True
        for t in self._tasks:
            t.cancel()
        for t in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await t
        self._tasks = []
        await self.process.stop()
        remove_files(self.settings)  # keys do not outlive the router (the table brings them back)

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

    def submit(
        self, table: resources_pb2.RoutingTable, certificates: Mapping[CertificateRef, bytes] | None = None
    ) -> None:
        """Apply `table` in the background; a newer one replaces one not yet applied.
        `certificates`: the PEM (chain and key) of each secret version the table's routes name."""
        self._pending = table
        self._pending_material = dict(certificates or {})
        self._wake.set()

    async def apply(
        self, table: resources_pb2.RoutingTable, certificates: Mapping[CertificateRef, bytes] | None = None
    ) -> ApplyResult:
        """Make HAProxy route by `table` now. Raises RouterError (the running config stays)."""
        t0 = time.perf_counter()
        try:
            result = await self._apply(table, certificates)
        except asyncio.CancelledError:
            raise  # the agent stopping: not a failed apply (as MeteredRuntime counts)
        except BaseException:
            if self.metrics is not None:
                self.metrics.router_applied("failed", time.perf_counter() - t0)
            raise
        if self.metrics is not None:
            self.metrics.router_applied(result.value, time.perf_counter() - t0)
        return result

    async def _apply(
        self, table: resources_pb2.RoutingTable, certificates: Mapping[CertificateRef, bytes] | None
    ) -> ApplyResult:
        material = dict(certificates or {})
        async with self._lock:
            new = render(table, self.settings, material.keys())
            for problem in new.problems:
                self._log.warning("route skipped", problem=problem)
            if self.process.pid is None:
                raise RouterError("haproxy is not running")
            self._known.update(new.servers)
            # After a reload that did not confirm, what HAProxy runs is unknown: reload again.
            changes = None if self._unsure else server_changes(self.applied, new)
            certs = certificate_changes(self.applied, new)
            try:
                write_files(new, self.settings, material)  # before any validate, reload or restart
            except MissingCertificate as exc:  # render skips such routes: a bug if it happens
                raise RouterError(str(exc)) from exc
            if (
                changes is not None
                and await self._certificates_at_runtime(certs, material)
                and await self._change_at_runtime(changes)
            ):
                write_atomically(self.settings.config_path, new.text)  # a restart starts from here
                self._set_applied(new)
                if certs:
                    return ApplyResult.CERTIFICATES
                if changes.added or changes.removed:
                    return ApplyResult.SERVERS
                return ApplyResult.WEIGHTS if changes else ApplyResult.UNCHANGED
            await self._reload(new)
            self._set_applied(new)
            return ApplyResult.RELOADED

    async def _certificates_at_runtime(
        self, certs: Mapping[str, CertificateRef], material: Mapping[CertificateRef, bytes]
    ) -> bool:
        try:
            for path, ref in sorted(certs.items()):
                await replace_at_runtime(self.api, path, material[ref])
                self._log.info("router certificate replaced", file=path, secret=ref[0], version=ref[1])
        except RuntimeAPIError as exc:
            self._log.warning("certificate replacement failed; reloading instead", error=str(exc))
            return False
        return True

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
        await self.process.validate(new)
        with contextlib.suppress(RuntimeAPIError):
            await self._collect_raw()  # last reading of the old worker's counters
        self._unsure = True  # from here until confirmed, what HAProxy runs is unknown
        try:
            pid = await self.process.reload()
        except asyncio.CancelledError:
            raise
        except BaseException:
            if self.metrics is not None:
                self.metrics.router_reloaded(ok=False)
            raise
        if self.metrics is not None:
            self.metrics.router_reloaded(ok=True)
        self._counters.reset_expected()
        self._retired.clear()
        self._log.info("router reloaded", version=new.version, worker=pid)

    async def _applier(self) -> None:
        while True:
            await self._wake.wait()
            self._wake.clear()
            table, self._pending = self._pending, None
            material = self._pending_material
            if table is None:
                continue
            try:
                t0 = time.monotonic()
                result = await self.apply(table, material)
                took = time.monotonic() - t0
                # A slow apply delays every weight change behind it (drains wait on it too).
                log = self._log.info if took > SLOW_APPLY else self._log.debug
                log("routes applied", version=table.version, result=result.value, took=round(took, 3))
            except (RouterError, RuntimeAPIError, OSError) as exc:
                self._log.error("routes not applied; retrying", version=table.version, error=str(exc))
                # Without a retry the router would stay on the old table until the next change.
                await asyncio.sleep(RETRY_DELAY)
                if self._pending is None:
                    self._pending, self._pending_material = table, material
                self._wake.set()

    # ------------------------------------------------------------------ stats

    async def start_until_up(self) -> None:
        """`start`, retried with backoff until it works: the agent manages containers with or
        without its router, so a HAProxy that cannot start is reported, not fatal."""
        backoff = Backoff(base=1.0, cap=30.0)
        while True:
            try:
                await self.start()
                return
            except (RouterError, OSError) as exc:
                delay = backoff.next()
                self._log.error("router did not start", error=str(exc), retry_in=round(delay, 2))
                await asyncio.sleep(delay)

    async def collect_if_up(self, *, node: str = "") -> resources_pb2.RouterStats | None:
        """`collect`, or None when HAProxy is not up yet or does not answer within 2 s (a
        heartbeat goes out without counters rather than late)."""
        if self.pid is None:
            return None
        try:
            async with asyncio.timeout(2.0):
                return await self.collect(node=node)
        except (RouterError, RuntimeAPIError, OSError, TimeoutError) as exc:
            self._log.warning("router stats unavailable", error=str(exc))
            return None

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

    def _empty(self) -> RenderedConfig:
        return render(resources_pb2.RoutingTable(), self.settings)

    async def _spawn(self, cfg: RenderedConfig) -> None:
        # A new HAProxy counts from zero and holds none of the servers retired at runtime.
        self._counters.reset_expected()
        self._retired.clear()
        await self.process.start(cfg)
        self._set_applied(cfg)
        self._known.update(cfg.servers)
        self._log.info("router started", pid=self.process.pid, port=self.settings.port, version=cfg.version)

    async def _watch(self) -> None:
        backoff = Backoff(base=0.5, cap=10.0)
        while True:
            code = await self.process.wait()
            if self._stopping:
                return
            self._log.error("haproxy exited; restarting", code=code, output=self.process.log_tail())
            while True:
                await asyncio.sleep(backoff.next())
                try:
                    async with self._lock:
                        await self._spawn(self.applied or self._empty())
                    backoff.reset()
                    break
                except (RouterError, OSError) as exc:
                    self._log.error("haproxy restart failed", error=str(exc))
