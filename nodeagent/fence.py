"""Fencing on return: stop what was rescheduled away before starting anything. Pure bookkeeping.

While this node was unreachable past the down grace, the control plane gave its containers'
slots to other nodes and marked each such container *fenced* (desired REMOVED, with the node's
new ``fence_epoch``; ``controlplane.reconcile.node_pass``). The agent kept them running — it
cannot tell a dead control plane from a cut link, and stopping on silence would turn every
control-plane outage into an application outage. When it reconnects it learns which ones were
fenced (the complete set carries them) and must stop those *before it starts any container*:
a new container could need the same host port or volume, and until the stale copy is gone the
slot runs twice.

`FenceGate` is that rule: ``hold(ids)`` names the stale containers (fenced records, and on a
complete set the local containers no assignment names any more: their records may be gone
already); while any of them has not been handled, an action that would start a container
(create, start) is deferred; once the last one is handled, the deferred ids are returned to be
re-planned. Stops, removals and reports are never deferred. Swarm and Nomad do not order
these (Nomad's ``max_client_disconnect`` reconciles on return, stopping and starting
concurrently); ccs does, because the at-most-once promise of a slot is only as good as the
order on the node.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from ccs.v1 import resources_pb2

from .converge import Kind, LocalAction

STARTS = frozenset({Kind.CREATE, Kind.START})


def is_fenced(container: resources_pb2.Container | None) -> bool:
    """Whether the control plane fenced this container (its slot was rescheduled away)."""
    return (container is not None and container.fence_epoch > 0
            and container.desired_state == resources_pb2.DESIRED_STATE_REMOVED)


@dataclass(slots=True)
class FenceGate:
    stale: set[str] = field(default_factory=set)  # to stop before anything starts
    deferred: set[str] = field(default_factory=set)  # wanted to start meanwhile

    def hold(self, ids: Iterable[str]) -> set[str]:
        """Add stale ids; returns those not held before."""
        new = set(ids) - self.stale
        self.stale |= new
        return new

    def blocks(self, cid: str, actions: Iterable[LocalAction]) -> bool:
        """Whether ``actions`` for ``cid`` must wait (a start while stale containers remain);
        a blocked id is remembered and released by :meth:`handled`."""
        if not self.stale or cid in self.stale or not any(a.kind in STARTS for a in actions):
            return False
        self.deferred.add(cid)
        return True

    def handled(self, cid: str) -> set[str]:
        """``cid`` was stopped and removed (or is gone): the ids to re-plan now (all deferred
        ones once no stale container remains, else none)."""
        self.stale.discard(cid)
        if self.stale or not self.deferred:
            return set()
        released, self.deferred = self.deferred, set()
        return released
