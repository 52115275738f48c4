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

Failures never stop the agent: each part's error is kept in `problem` (reported in the node's
status message) and retried on the next apply; the rest of the plan is applied regardless.
"""

from __future__ import annotations

import asyncio
import contextlib
from ipaddress import IPv4Address

import structlog
from pyroute2.netlink.exceptions import NetlinkError

from ccs.v1 import agent_pb2

from ..backoff import Backoff
from .firewall import FirewallError, apply_firewall, fix_nat_jump
from .names import NameTable
from .plan import FabricPlan, plan_fabric
from .resolver import Resolver
from .routes import RouteError, ensure_resolver_address, sync_routes
from .rules import MissingChain

DEFAULT_PERIOD = 30.0


class NetworkFabric:
    """This node's part of the cluster's application networks."""

    def __init__(
        self,
        *,
        resolver: Resolver | None = None,
        period: float = DEFAULT_PERIOD,
        log: structlog.typing.FilteringBoundLogger | None = None,
    ) -> None:
        self.resolver = resolver
        self.period = period
        self.cluster = ""
        self.node = ""
        self.plan: FabricPlan | None = None  # the last plan applied (whatever failed in it)
        self.applied = asyncio.Event()  # set after each apply (tests wait on it)
        self._map: agent_pb2.NetworkMap | None = None
        self._wake = asyncio.Event()
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
        self._wake.set()

    def poke(self) -> None:
        """Re-assert everything soon (after an engine restart)."""
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
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(self.period):
                        await self._wake.wait()
                self._wake.clear()
                await self.apply()
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
            self.plan = plan
        self.applied.set()
        return plan

    async def close(self) -> None:
        """Stop answering names. Routes and rules stay: the containers keep running."""
        if self.resolver is not None:
            await self.resolver.close()


__all__ = ["DEFAULT_PERIOD", "NetworkFabric"]
