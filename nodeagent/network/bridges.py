"""Which application bridges on this node are stale: pure (no I/O, no clock).

Why this exists: a network whose first block filled gets further blocks on the node, a bridge
each (``ccs-<cluster>_<app>.<k>``). When the control plane frees such a block (its containers
are gone) the bridge stays until the application leaves the node, and the block may be handed
to another application on another node, maybe as part of a larger (shorter-prefix) block. The
stale bridge's connected route is more specific than the host-gw route to the new owner, so
this node's containers could not reach those addresses. The same holds for the first block of
one Compose network of an application that still runs on the node on its other networks.

The rule, applied after each network map (and every periodic re-apply of it): a bridge of this
cluster that is an application network (its labels name the application) is stale when none
of its subnets is a block the map lists on this node for that (application, network), and no
container assigned to this node holds it (``wanted``: the subnets in ``Container.subnets`` of
the node's assignments, which cover a block the map does not list yet - maps and assignments
travel apart, and a bridge is made before its container). The applier removes a stale bridge
only while no container, in any state, uses it; one that still has a container is tried again
on the next apply.

Why the allocator needs no hold on a freed block (ordering): the block is freed in the same
etcd state that removes it from this node's map, so any map that routes the block to its new
owner also no longer lists it here, and this node removes the bridge in the very apply that
adds that route (routes first, then bridges: the connectivity gap is the time between the two
steps of one apply, not the life of the bridge). A node that does not receive maps (agent down
or partitioned) has no route to the new owner either, so the stale bridge costs nothing more
than the missing map; it goes at the first apply after reconnecting. A block handed out again
on the *same* node is replaced by ``AppNetworks.ensure`` (an unused bridge with an overlapping
subnet is removed before the create). Holding the block until every node acknowledged its map
would need per-node acknowledgements in etcd for no gain in correctness.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable

from nodeagent.runtime.types import Bridge

from .plan import FabricPlan, NetKey


def stale_bridges(plan: FabricPlan, bridges: Iterable[Bridge], wanted: Iterable[str]) -> list[str]:
    """The names of the bridges to remove (when unused), sorted; see the module doc.

    A bridge without a subnet (made before the control plane allocated blocks) or without an
    application is never stale here: it is not one of the blocks the map speaks of, and the
    application's own clean-up removes it when the application leaves the node.
    """
    local = {n.key: {str(b) for b in n.local} for n in plan.networks}
    keep = {_canonical(s) for s in wanted}
    out = []
    for b in bridges:
        if not b.application or not b.subnets:
            continue
        subnets = {_canonical(s) for s in b.subnets}
        listed = local.get(NetKey(b.application, b.network or "default"), set())
        if subnets & listed or subnets & keep:
            continue
        out.append(b.name)
    return sorted(out)


def _canonical(text: str) -> str:
    """One spelling per subnet (the engine and the map may differ in host bits)."""
    try:
        return str(ipaddress.IPv4Network(text, strict=False))
    except ValueError:
        return text


__all__ = ["Bridge", "stale_bridges"]
