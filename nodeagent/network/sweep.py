"""`BridgeSweeper`: removes the stale application bridges of this node after each map apply.

The rule is pure (`bridges.stale_bridges`, where the module doc explains why and why the
allocator holds no freed block); this is its applier: list this cluster's application networks
on the engine, plan, and remove each stale one that no container uses. It runs after the
fabric applied a map (routes first, so the new owner's route is in place when the shadowing
bridge goes) and on every periodic re-apply, so a bridge that still had a container is removed
once that container is gone.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

import structlog

from nodeagent.runtime.types import Runtime, RuntimeFailure

from .bridges import stale_bridges
from .plan import FabricPlan


class BridgeSweeper:
    """Called with each applied plan; returns what it could not do ("" when nothing)."""

    def __init__(
        self, runtime: Runtime, cluster: str, wanted: Callable[[], Iterable[str]],
        log: structlog.typing.FilteringBoundLogger | None = None,
    ) -> None:
        self.runtime = runtime
        self.cluster = cluster
        self.wanted = wanted  # the subnets the node's assigned containers hold
        self._log = log or structlog.get_logger("ccs.agent.network")

    async def __call__(self, plan: FabricPlan) -> str:
        try:
            bridges = await self.runtime.app_networks(self.cluster)
        except RuntimeFailure as exc:
            return f"cannot list application networks: {exc.reason}"
        failed = []
        for name in stale_bridges(plan, bridges, self.wanted()):
            try:
                if await self.runtime.remove_unused_network(name):
                    self._log.info("removed stale application bridge", network=name)
            except RuntimeFailure as exc:
                failed.append(f"{name}: {exc.reason}")
        return "; ".join(failed)


__all__ = ["BridgeSweeper"]
