"""`NetworkFabric`: keeps this node's routes, firewall and resolver in line with the latest map.

Level-triggered like the rest of the agent: `submit` only stores the newest map and wakes the
fabric's own task, which plans it (pure) and applies the plan (routes, sets, chains) in the
background, so the session stream never waits on iptables. The same apply runs again every
`period` seconds and on `poke()` (the agent pokes after the engine came back from a restart,
when dockerd has re-created its rules), and it is cheap when nothing moved: one iptables-save,
one route dump, no write. The resolver's names are swapped in first, so a name follows the
map at once even while iptables is busy.

`network_created()` is awaited by the runtime right after it created an application network
and before the container starts: Docker has just inserted that network's MASQUERADE rule
above the nat jump, and a connection made before the jump is back on top would leave with the
node's address and be refused by the receiving node for its whole life (conntrack keeps the
NAT decision of a connection).

Local containers on several networks get routes inside them (`endpoints`, planned by
`plan.endpoint_routes`): the fabric asks the agent for them (`endpoints`, a callable) on every
apply, and the agent pokes it when one starts or stops.

After routes and rules, `after_apply` (the agent's `sweep.BridgeSweeper`) removes this node's
application bridges whose block the map no longer lists (`bridges` says why they must go).
`sweep()` runs that sweep alone, with the plan last applied: the agent calls it after each
container removal (a bridge that was in use may be free now), which changes no route, rule or
name, so it costs no iptables-save/restore and no route dump.

Failures never stop the agent: each part's error is kept in `problem` (reported in the node's
status message) and retried on the next apply; the rest of the plan is applied regardless.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
from collections.abc import Awaitable, Callable, Iterable
from ipaddress import IPv4Address

import structlog
from pyroute2.netlink.exceptions import NetlinkError

from ccs.v1 import agent_pb2

from ..backoff import Backoff
from .endpoints import EndpointError, sync_endpoint
from .firewall import FirewallError, apply_firewall, fix_nat_jump
from .names import NameTable
from .plan import Endpoint, FabricPlan, endpoint_routes, plan_fabric
from .resolver import Resolver
from .routes import RouteError, ensure_resolver_address, sync_routes
from .rules import MissingChain

DEFAULT_PERIOD = 30.0

#: (pid, application, (Compose network, address) in template order) of a local container.
LocalEndpoint = tuple[int, str, tuple[tuple[str, str], ...]]


class NetworkFabric:
    """This node's part of the cluster's application networks."""

    def __init__(
        self,
        *,
        resolver: Resolver | None = None,
        period: float = DEFAULT_PERIOD,
        endpoints: Callable[[], Iterable[LocalEndpoint]] | None = None,
        log: structlog.typing.FilteringBoundLogger | None = None,
    ) -> None:
        self.resolver = resolver
        self.endpoints = endpoints
        self.period = period
        self.cluster = ""
        self.node = ""
        self.plan: FabricPlan | None = None  # the last plan applied (whatever failed in it)
        # Awaited with each applied plan, after routes and rules; returns a problem ("": none).
        # The agent sets it to its `sweep.BridgeSweeper` once it knows its runtime and cluster.
        self.after_apply: Callable[[FabricPlan], Awaitable[str]] | None = None
        self.applied = asyncio.Event()  # set after each apply (tests wait on it)
        self.swept = asyncio.Event()  # set after each sweep() ran (tests wait on it)
        self._map: agent_pb2.NetworkMap | None = None
        self._wake = asyncio.Event()
        self._full = False  # the next wake applies everything (else it only sweeps)
        self._lock = asyncio.Lock()
        self._problems: dict[str, str] = {}
        self._log = log or structlog.get_logger("ccs.agent.network")

    @property
    def problem(self) -> str:
        """What is not in place now, in words ("" when everything is)."""
        return "; ".join(f"{part}: {text}" for part, text in sorted(self._problems.items()) if text)

    def _set_problem(self, part: str, text: str) -> None:
        if self._problems.get(part, "") != text:
            if text:
                self._log.warning("network problem", part=part, problem=text)
            elif self._problems.get(part):
                self._log.info("network problem solved", part=part)
        self._problems[part] = text

    # ------------------------------------------------------------------ inputs

    def submit(self, m: agent_pb2.NetworkMap) -> None:
        """Hold `m` from now on (version 0 means unchanged: ignored); applied in the background."""
        if m.version == 0:
            return
        self._map = m
        self._full = True
        self._wake.set()

    def poke(self) -> None:
        """Re-assert everything soon (after an engine restart, a container's endpoints changed)."""
        self._full = True
        self._wake.set()

    def sweep(self) -> None:
        """Run the bridge sweep soon, and nothing else (a container was removed)."""
        self._wake.set()

    async def network_created(self) -> None:
        """Put the nat jump back above the MASQUERADE rule Docker just inserted (see module doc)."""
        async with self._lock:
            if self.plan is None or self.plan.empty:
                return
            try:
                if await fix_nat_jump(self.plan):
                    self._log.debug("nat jump put back on top")
            except (FirewallError, OSError) as exc:
                self._set_problem("firewall", str(exc))

    # ------------------------------------------------------------------ loop

    async def run(self, *, cluster: str, node: str) -> None:
        """Start the resolver and keep the plan applied until cancelled.

        The resolver starts beside the apply loop, not before it: a resolver address that
        cannot be served (port 53 taken) is a problem to report and retry, and must not keep
        routes and firewall from being put in place (`apply` feeds its names either way)."""
        self.cluster, self.node = cluster, node
        starting = (asyncio.create_task(self._start_resolver(self.resolver), name="resolver-start")
                    if self.resolver is not None else None)
        try:
            while True:
                full = False
                try:
                    async with asyncio.timeout(self.period):
                        await self._wake.wait()
                except TimeoutError:
                    full = True  # the periodic re-apply
                self._wake.clear()
                full, self._full = full or self._full, False
                await (self.apply() if full else self._sweep())
        finally:
            if starting is not None and not starting.done():
                starting.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await starting

    async def _start_resolver(self, resolver: Resolver) -> None:
        """Bind the resolver, retrying with backoff (its address may be taken for a while)."""
        backoff = Backoff(base=1.0, cap=30.0)
        while True:
            try:
                await ensure_resolver_address(IPv4Address(resolver.address))
                await resolver.start()
                self._set_problem("resolver", "")
                self._log.info("resolver serving", address=resolver.address, port=resolver.port)
                return
            except (OSError, NetlinkError, ValueError) as exc:
                self._set_problem("resolver", f"cannot serve on {resolver.address}:{resolver.port}: {exc}")
            await asyncio.sleep(backoff.next())

    async def apply(self) -> FabricPlan | None:
        """Apply the newest map now (None: no map received yet, nothing to hold)."""
        m = self._map
        if m is None:
            return None
        plan = plan_fabric(m, node=self.node, cluster=self.cluster)
        async with self._lock:
            if self.resolver is not None:
                self.resolver.update(NameTable.from_plan(plan))
            self._set_problem("map", "; ".join(plan.problems))
            try:
                await apply_firewall(plan)
                self._set_problem("firewall", "")
            except (FirewallError, MissingChain, OSError) as exc:
                self._set_problem("firewall", str(exc))
            try:
                await sync_routes(plan.routes)
                self._set_problem("routes", "")
            except (RouteError, NetlinkError, OSError) as exc:
                self._set_problem("routes", str(exc))
            await self._sync_endpoints(plan)
            if self.after_apply is not None:
                self._set_problem("bridges", await self.after_apply(plan))
            self.plan = plan
        self.applied.set()
        return plan

    async def _sweep(self) -> None:
        """The bridge sweep alone, with the plan last applied (none yet: the first apply sweeps)."""
        async with self._lock:
            if self.after_apply is not None and self.plan is not None:
                self._set_problem("bridges", await self.after_apply(self.plan))
        self.swept.set()

    async def _sync_endpoints(self, plan: FabricPlan) -> None:
        """Routes inside each local container on several networks; a container that is gone
        meanwhile (its namespace with it) is skipped."""
        failed: list[str] = []
        for pid, app, networks in list(self.endpoints() if self.endpoints is not None else ()):
            try:
                e = Endpoint(pid, app, tuple((n, IPv4Address(a)) for n, a in networks))
            except ValueError:
                continue
            desired = endpoint_routes(plan, e)
            if not desired or not _alive(pid):
                continue
            try:
                await sync_endpoint(pid, desired)
            except (EndpointError, OSError) as exc:
                if _alive(pid):
                    failed.append(str(exc))
        self._set_problem("container routes", "; ".join(failed))

    async def close(self) -> None:
        """Stop answering names. Routes and rules stay: the containers keep running."""
        if self.resolver is not None:
            await self.resolver.close()


def _alive(pid: int) -> bool:
    """Whether the process (and so its network namespace) still exists: a /proc lookup."""
    return os.path.exists(f"/proc/{pid}/ns/net")


__all__ = ["DEFAULT_PERIOD", "LocalEndpoint", "NetworkFabric"]
