"""The I/O half of convergence: one serial worker per container, bounded parallelism.

Level-triggered (controller-runtime style): callers only mark a ccs container id dirty
(`enqueue`); its worker reads the current desired state from the book, re-inspects the
engine, asks the pure planner what to do and does it. A burst of events for one container
costs one pass, and any pass can be repeated safely. Different containers run in parallel,
at most `concurrency` at a time.

Errors carry their policy (runtime `RuntimeFailure.permanent`): a permanent one is reported
as FAILED with its reason and never retried for that container id (the control plane
decides whether to create a replacement); a temporary one re-queues the id with per-id
exponential backoff.

Drain before stop: a stop or removal whose `stop_after` is still ahead is not done yet, and
nothing is reported; the id is re-queued for `stop_after` (a timer, not a sleeping worker, so
draining containers hold no concurrency slot), and any pass before then re-checks. After
`stop_after` it also waits, the same way, until this node's router no longer sends it requests
(`converge.router_hold`, bounded).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable, Iterable

import structlog

from ccs.v1 import agent_pb2, resources_pb2
from nodeagent.runtime import naming
from nodeagent.runtime.types import Observed, Runtime, RuntimeFailure, State

from . import status
from .assignments import AssignmentBook
from .backoff import Backoff
from .converge import LIVE_STATES, Kind, LocalAction, drain_remaining, plan_one, router_hold
from .fence import FenceGate
from .first_check import FirstHealthCheck
from .images import NodeImages
from .local_addresses import LocalAddresses
from .mounted_files import DEFAULT_ROOT, MountedFiles
from .probe_monitor import ProbeMonitor, has_probe

DEFAULT_CONCURRENCY = 32
FIRST_CHECK_PASSED = "health check passed (run by the agent right after the start)"

Report = Callable[[agent_pb2.ContainerStatusUpdate], object]


class Executor:
    """Applies the book's desired state to the runtime and reports what it observes."""

    def __init__(
        self,
        runtime: Runtime,
        book: AssignmentBook,
        report: Report,
        *,
        cluster: str,
        node: str,
        address: str,
        concurrency: int = DEFAULT_CONCURRENCY,
        probe_period: float = 3.0,
        unrouted_for: Callable[[str], float | None] | None = None,
        on_endpoints: Callable[[], None] | None = None,
        on_removed: Callable[[], None] | None = None,
        log: structlog.typing.FilteringBoundLogger | None = None,
        files: MountedFiles | None = None,
    ) -> None:
        if concurrency < 1:
            raise ValueError(f"concurrency: must be >= 1, got {concurrency}")
        self.runtime = runtime
        self.book = book
        self.cluster = cluster
        self.node = node
        self.address = address
        self._report = report
        self._unrouted_for = unrouted_for  # the node's router: see converge.router_hold
        self._sem = asyncio.Semaphore(concurrency)
        # What the node resolver and the network fabric ask about local containers' addresses.
        self.addresses = LocalAddresses(on_endpoints)
        # After each removal: the bridge of a block it held may be stale now (network.sweep).
        self._removed = on_removed
        self._log = log or structlog.get_logger("ccs.agent")
        self.docker_ids: dict[str, str] = {}  # ccs container id -> docker id
        self._apps: dict[str, str] = {}  # ccs container id -> application (orphans included)
        self.tracked: set[str] = set()  # created or adopted by this process
        self.failed: set[str] = set()  # permanent failure reported; never retried
        self._dirty: set[str] = set()
        self._workers: dict[str, asyncio.Task[None]] = {}
        self._retries: dict[str, asyncio.TimerHandle] = {}
        self._router_waits: set[str] = set()  # logged once each
        self._backoff: dict[str, Backoff] = {}
        self.probes = ProbeMonitor(runtime, self.enqueue, period=probe_period)
        # The agent's own first run of a health check, right after the start (nodeagent.first_check).
        self.first_checks = FirstHealthCheck(runtime, self.enqueue)
        self.files = files or MountedFiles(DEFAULT_ROOT / f"{cluster}-{node}")
        self.images = NodeImages()  # what it pulled and each service ran here (image collection)
        self.fence = FenceGate()  # stale containers stop before anything starts (nodeagent.fence)

    # ------------------------------------------------------------------ scheduling

    def enqueue(self, cid: str) -> None:
        """Mark `cid` dirty; its worker (started if idle) will re-plan it."""
        handle = self._retries.pop(cid, None)
        if handle is not None:
            handle.cancel()
        self._dirty.add(cid)
        if cid not in self._workers:
            self._workers[cid] = asyncio.create_task(self._work(cid), name=f"converge-{cid}")

    def fence_off(self, ids: Iterable[str]) -> None:
        """Stop ``ids`` (fenced or orphaned on return) before any container starts."""
        new = self.fence.hold(ids)
        if new:
            self._log.warning("fencing: stopping containers rescheduled away while this node was unreachable "
                              "before starting any", containers=sorted(new))
        for cid in new:
            self.enqueue(cid)

    def observe_all(self, observed: Iterable[Observed]) -> set[str]:
        """Learn docker ids from a list of the engine's containers; return this cluster's ids."""
        seen: set[str] = set()
        for o in observed:
            cid = o.container_id
            if o.labels.get(naming.CLUSTER) != self.cluster or not cid:
                continue
            seen.add(cid)
            self.docker_ids.setdefault(cid, o.docker_id)
            self._apps[cid] = o.labels.get(naming.APP, "")
        return seen

    def idle(self) -> bool:
        return not self._workers and not self._dirty

    def waiting(self) -> frozenset[str]:
        """Ids with a timer pending: draining before stop, or a retry after a temporary error."""
        return frozenset(self._retries)

    async def close(self) -> None:
        """Cancel workers and retries; containers are left as they are."""
        for handle in self._retries.values():
            handle.cancel()
        self._retries.clear()
        workers = list(self._workers.values())
        for w in workers:
            w.cancel()
        for w in workers:
            with contextlib.suppress(asyncio.CancelledError):
                await w
        await self.probes.close()
        await self.first_checks.close()

    async def _work(self, cid: str) -> None:
        try:
            while cid in self._dirty:
                self._dirty.discard(cid)
                async with self._sem:
                    try:
                        await self.reconcile(cid)
                        self._backoff.pop(cid, None)
                        if cid in self.fence.stale and cid not in self._retries:  # handled, not draining
                            for released in self.fence.handled(cid):
                                self.enqueue(released)
                    except RuntimeFailure as exc:  # temporary (permanent ones are handled inside)
                        self._retry_later(cid, exc)
                    except Exception:
                        self._log.exception("converge failed", container_id=cid)
                        self._retry_later(cid, None)
        finally:
            self._workers.pop(cid, None)

    def _retry_later(self, cid: str, exc: RuntimeFailure | None) -> None:
        delay = self._backoff.setdefault(cid, Backoff(base=0.5, cap=30.0)).next()
        self._log.warning("retrying", container_id=cid, delay=round(delay, 2), error=str(exc or ""))
        loop = asyncio.get_running_loop()
        self._retries[cid] = loop.call_later(delay, self.enqueue, cid)

    def _hold_for_router(self, cid: str, delay: float) -> None:
        if cid not in self._router_waits:
            self._router_waits.add(cid)
            self._log.info("waiting for the router to drop the container", container_id=cid)
        self._replan_in(cid, delay)

    def _wake_later(self, cid: str, delay: float) -> None:
        self._log.info("draining before stop", container_id=cid, seconds=round(delay, 2))
        self._replan_in(cid, delay)

    def _replan_in(self, cid: str, delay: float) -> None:
        """Re-plan `cid` after `delay` seconds (drain); an earlier enqueue cancels the timer."""
        old = self._retries.pop(cid, None)
        if old is not None:
            old.cancel()
        self._retries[cid] = asyncio.get_running_loop().call_later(delay, self.enqueue, cid)

    # ------------------------------------------------------------------ one container

    async def reconcile(self, cid: str) -> None:
        container, removing = self.book.get(cid)
        observed = await self._observe(cid)
        actions = plan_one(
            cid, container, removing, observed, tracked=cid in self.tracked, failed=cid in self.failed
        )
        if self.fence.blocks(cid, actions):
            self._log.info("start held until fenced containers are stopped", container_id=cid)
            return
        now = time.time()
        wait = max((drain_remaining(a, now) for a in actions), default=0.0)
        if wait > 0:
            self._wake_later(cid, wait)
            return
        if self._unrouted_for is not None:
            hold = max((router_hold(a, now, self._unrouted_for(cid)) for a in actions), default=0.0)
            if hold > 0:
                self._hold_for_router(cid, hold)
                return
        for action in actions:
            await self._apply(action)

    async def _observe(self, cid: str) -> Observed | None:
        docker_id = self.docker_ids.get(cid)
        if docker_id is None:
            return None
        observed = await self.runtime.inspect(docker_id)
        if observed is None:
            self.docker_ids.pop(cid, None)
        return observed

    async def _apply(self, a: LocalAction) -> None:
        c = a.container
        if c is None:  # REMOVE_ORPHAN
            assert a.observed is not None
            self._log.info("removing orphan", container_id=a.container_id, name=a.observed.name)
            await self._stop_remove(a.container_id, a.observed.docker_id, a.grace_seconds, a.volumes)
            await self._cleanup_app(a.observed.labels.get(naming.APP, ""))
            return
        self._apps[a.container_id] = c.application
        if a.kind is Kind.CREATE:
            await self._create(a.container_id, c)
        elif a.kind is Kind.START:
            assert a.observed is not None
            self.tracked.add(a.container_id)
            await self._start(a.container_id, c, a.observed.docker_id)
        elif a.kind is Kind.ADOPT:
            docker_id = a.observed.docker_id if a.observed is not None else ""
            self._log.info("adopted", container_id=a.container_id, docker_id=docker_id[:12])
            self.tracked.add(a.container_id)
            self._emit(c, a.observed)
        elif a.kind is Kind.REPORT:
            state = None if a.observed is not None and a.state == a.observed.state else a.state
            if state == State.CONTAINER_STATE_FAILED:
                self.failed.add(a.container_id)
            self._emit(c, a.observed, state=state, message=a.message)
        elif a.kind is Kind.STOP:
            assert a.observed is not None
            self.probes.stop(a.container_id)
            self.first_checks.stop(a.container_id)
            await self.runtime.stop(a.observed.docker_id, a.grace_seconds)
            after = await self.runtime.inspect(a.observed.docker_id)
            self._emit(c, after, state=State.CONTAINER_STATE_STOPPED, message="stopped")
        elif a.kind is Kind.REMOVE:
            docker_id = a.observed.docker_id if a.observed is not None else ""
            if docker_id:
                await self._stop_remove(a.container_id, docker_id, a.grace_seconds, a.volumes)
            else:  # never created (or already gone): its secret files may still be on the tmpfs
                await self.files.remove(a.container_id)
            st = status.build_status(
                c, None, state=State.CONTAINER_STATE_REMOVED, message="removed",
                node=self.node, address=self.address, now=time.time(),
            )
            st.docker_id = docker_id
            self._report(status.update(c, st))
            self._forget(a.container_id)
            await self._cleanup_app(c.application)

    async def _create(self, cid: str, c: resources_pb2.Container) -> None:
        pulled = False

        def on_pull(image: str) -> None:
            nonlocal pulled
            pulled = True
            self._emit(c, None, state=State.CONTAINER_STATE_PULLING, message=f"pulling {image}")

        self._emit(c, None, state=State.CONTAINER_STATE_PENDING, message="preparing")
        try:
            c = await self.files.mount(cid, c, self.book.files.get(cid, ()))  # secrets, configs
            await self.runtime.prepare(c, on_pull=on_pull, auth=self.book.auth.get(cid))
            self.images.ran(c, pulled)  # for image collection (nodeagent.images)
            docker_id = await self.runtime.create(c)
        except RuntimeFailure as exc:
            # No container holds the files: they leave the tmpfs now (a retry writes them again).
            await self.files.remove(cid)
            self._fail_or_raise(cid, c, exc, None)
            return
        self.docker_ids[cid] = docker_id
        self.tracked.add(cid)
        self._log.info("created", container_id=cid, name=c.meta.name, docker_id=docker_id[:12])
        await self._start(cid, c, docker_id)

    async def _start(self, cid: str, c: resources_pb2.Container, docker_id: str) -> None:
        try:
            await self.runtime.start(docker_id)
        except RuntimeFailure as exc:
            self._fail_or_raise(cid, c, exc, await self.runtime.inspect(docker_id))
            return
        self._emit(c, await self.runtime.inspect(docker_id))

    def _fail_or_raise(
        self, cid: str, c: resources_pb2.Container, exc: RuntimeFailure, observed: Observed | None
    ) -> None:
        if not exc.permanent:
            self._emit(c, observed, state=State.CONTAINER_STATE_PENDING, message=f"retrying: {exc.reason}")
            raise exc
        self.failed.add(cid)
        self._log.warning("container failed", container_id=cid, name=c.meta.name, reason=exc.reason)
        self._emit(c, observed, state=State.CONTAINER_STATE_FAILED, message=exc.reason, reason=exc.failure_reason)

    async def _stop_remove(self, cid: str, docker_id: str, grace: float, volumes: bool) -> None:
        self.probes.stop(cid)
        self.first_checks.stop(cid)
        await self.runtime.stop(docker_id, grace)
        await self.runtime.remove(docker_id, volumes=volumes)
        await self.files.remove(cid)
        self.docker_ids.pop(cid, None)
        self._apps.pop(cid, None)

    def _forget(self, cid: str) -> None:
        self.addresses.forget(cid)
        self.first_checks.stop(cid)
        self._router_waits.discard(cid)
        self.book.forget(cid)
        self.tracked.discard(cid)
        self.failed.discard(cid)
        self._apps.pop(cid, None)
        self._backoff.pop(cid, None)

    async def _cleanup_app(self, app: str) -> None:
        """Remove the app network once no container of the app is left on this node."""
        if self._removed is not None:
            self._removed()
        if not app:
            return
        for cid in self.book.ids():
            c, _ = self.book.get(cid)
            if c is not None and c.application == app:
                return
        if app in self._apps.values():
            return
        self._log.info("removing app resources", app=app)
        await self.runtime.remove_app_resources(self.cluster, app, volumes=False)

    # ------------------------------------------------------------------ reporting

    def _emit(
        self,
        c: resources_pb2.Container,
        o: Observed | None,
        *,
        state: int | None = None,
        message: str | None = None,
        reason: int = 0,
    ) -> None:
        """Report `c`; overlays the agent-side probe verdict on a live container, and HEALTHY on
        a started one the engine still calls "starting" once the agent's own first run of its
        health check passed (nodeagent.first_check).

        `reason` is the FailureReason of a permanent failure (0: none)."""
        cid = c.meta.id
        by_agent_check = False
        if state is None and o is not None and o.state == State.CONTAINER_STATE_STARTING:
            if self.first_checks.passed(cid, o):
                state, by_agent_check, message = State.CONTAINER_STATE_HEALTHY, True, FIRST_CHECK_PASSED
            else:
                self.first_checks.ensure(cid, o)
        elif state is None and o is not None and o.state == State.CONTAINER_STATE_HEALTHY:
            # The engine agrees: the same report as before, so the time it turned ready (the
            # status' updated_at, what a release's monitor and delay count from) does not move.
            if self.first_checks.passed(cid, o):
                by_agent_check, message = True, FIRST_CHECK_PASSED
        elif o is not None and o.state == State.CONTAINER_STATE_UNHEALTHY:
            self.first_checks.engine_judged(cid)  # from now on the engine's verdicts alone
        if state is None and o is not None and o.state in LIVE_STATES and has_probe(c):
            self.probes.ensure(cid, c, o.docker_id)
            verdict = self.probes.verdict(cid)
            if verdict is not None and verdict.state is not None and o.state == State.CONTAINER_STATE_RUNNING:
                state, message = verdict.state, verdict.message
        st = status.build_status(
            c, o, state=state, message=message, node=self.node, address=self.address, now=time.time()
        )
        if reason:
            st.failure_reason = reason  # type: ignore[assignment]  # FailureReason is an int enum
        st.healthy_by_agent_check = by_agent_check
        self.addresses.note(cid, c, o.pid if o is not None else 0, dict(st.addresses))
        self._report(status.update(c, st))
