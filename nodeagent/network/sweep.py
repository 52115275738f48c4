"""`BridgeSweeper`: removes the stale application bridges of this node after each map apply.

The rule is pure (`bridges.stale_bridges`, where the module doc explains why and why the
allocator holds no freed block); this is its applier: list this cluster's application networks
on the engine, plan, and remove each stale one that no container uses. It runs after the
fabric applied a map (routes first, so the new owner's route is in place when the shadowing
bridge goes) and on every periodic re-apply, so a bridge that still had a container is removed
once that container is gone.

Cheap when nothing moved: the engine's network list (one call, every application network of
the node) is read only when this node's blocks in the map, or the blocks its assignments hold,
changed since the last sweep, or when the last sweep left a stale bridge in place (in use).
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
        # What the last sweep that left nothing behind saw: (local blocks, wanted blocks).
        self._swept: tuple[frozenset[tuple[str, str, str]], frozenset[str]] | None = None

    async def __call__(self, plan: FabricPlan) -> str:
        wanted = frozenset(self.wanted())
        seen = (frozenset((n.key.application, n.key.network, str(b)) for n in plan.networks for b in n.local), wanted)
        if seen == self._swept:
            return ""
        try:
            bridges = await self.runtime.app_networks(self.cluster)
        except RuntimeFailure as exc:
            return f"cannot list application networks: {exc.reason}"
        failed, left = [], False
        for name in stale_bridges(plan, bridges, wanted):
            try:
                if await self.runtime.remove_unused_network(name):
                    self._log.info("removed stale application bridge", network=name)
                else:
                    left = True  # still in use: look again next time
            except RuntimeFailure as exc:
                failed.append(f"{name}: {exc.reason}")
        self._swept = None if failed or left else seen
        return "; ".join(failed)


__all__ = ["BridgeSweeper"]
