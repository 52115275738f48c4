"""A service's containers seen per slot (replicated) or per node (global), old beside new.

Every strategy works slot by slot, the way the design puts a new container *beside* the old one in
the same slot: the view here says, for each slot, which containers are of the service's current
generation ("new") and which are not ("old"), ignoring the ones already on their way out. It
never looks at time except through ``now`` passed in.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from ccs.labels import OUTCOME_FAILED
from ccs.v1 import resources_pb2 as pb
from controlplane.planner.containers import (
    is_dead,
    is_gone,
    is_live,
    is_ready,
    outcome,
    sort_key_newest_first,
    timestamp,
)

Key = int | str
"""A slot number (replicated) or a node id (global)."""


@dataclass(frozen=True)
class Slot:
    """One slot of one service. ``old``/``new``: containers not desired REMOVED; ``leaving``: old
    containers desired REMOVED whose Docker container has not been observed stopped yet."""

    service: str
    key: Key
    old: tuple[pb.Container, ...]
    new: tuple[pb.Container, ...]
    leaving: tuple[pb.Container, ...]
    spec: pb.ServiceSpec

    @property
    def global_mode(self) -> bool:
        return isinstance(self.key, str)

    @property
    def label(self) -> str:
        return f"{self.service} node {self.key}" if self.global_mode else f"{self.service}.{self.key}"

    @property
    def best_new(self) -> pb.Container | None:
        """The new container that counts for this slot: ready first, then live, then newest."""
        if not self.new:
            return None
        return min(self.new, key=lambda c: (_rank(c, self.spec), *sort_key_newest_first(c)))

    @property
    def live_old(self) -> tuple[pb.Container, ...]:
        return tuple(c for c in self.old if is_live(c))

    @property
    def new_ready(self) -> bool:
        best = self.best_new
        return best is not None and is_ready(best, self.spec)

    @property
    def needs_update(self) -> bool:
        """Holds a live old container and no new one: the slot waits for its turn."""
        return bool(self.live_old) and not self.new


def slots_of(service: pb.Service, containers: Sequence[pb.Container]) -> list[Slot]:
    """The slots of ``service`` that hold at least one container, in key order.

    Replicated: slots 1..replicas (higher slots are being scaled away by the service planner).
    Global: every node that holds a container of the service (nodes without one are the service
    planner's: it creates them from the current spec).
    """
    global_mode = service.spec.mode == pb.SERVICE_MODE_GLOBAL
    wanted = range(1, service.spec.replicas + 1)
    groups: dict[Key, list[pb.Container]] = defaultdict(list)
    for c in containers:
        key: Key = c.node if global_mode else int(c.slot)
        if global_mode and not key:
            continue
        if not global_mode and key not in wanted:
            continue
        groups[key].append(c)
    out: list[Slot] = []
    for key in sorted(groups, key=lambda k: (str(type(k)), k)):
        members = sorted(groups[key], key=lambda c: c.meta.id)
        current = [c for c in members if not is_gone(c)]
        out.append(
            Slot(
                service=str(service.meta.name),
                key=key,
                old=tuple(c for c in current if c.spec_generation != service.generation),
                new=tuple(c for c in current if c.spec_generation == service.generation),
                leaving=tuple(
                    c for c in members if is_gone(c) and c.spec_generation != service.generation
                ),
                spec=service.spec,
            )
        )
    return out


def is_failed(c: pb.Container) -> bool:
    """Dead while it should run, or stopped for good by its restart policy."""
    return is_dead(c) or outcome(c) == OUTCOME_FAILED


def is_unhealthy(c: pb.Container) -> bool:
    """Counts against a canary's ``max_unhealthy``: failed, or running but reported UNHEALTHY."""
    return is_failed(c) or (is_live(c) and c.status.state == pb.CONTAINER_STATE_UNHEALTHY)


def ready_since(c: pb.Container) -> datetime | None:
    """When a ready container became ready, as best the records tell.

    The agent stamps ``status.updated_at`` only when the status content changes, so for a ready
    container it is the time it turned RUNNING/HEALTHY (or later, if its endpoints changed: that only
    lengthens a monitor period, never shortens it).
    """
    return timestamp(c.status.updated_at) or timestamp(c.status.started_at) or timestamp(c.meta.created_at)


def created_at(c: pb.Container) -> datetime | None:
    return timestamp(c.meta.created_at)


def _rank(c: pb.Container, spec: pb.ServiceSpec) -> int:
    if is_ready(c, spec):
        return 0
    if is_live(c):
        return 1
    return 2
