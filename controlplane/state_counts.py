"""``StateCounts``: a cluster's containers by state and by pending reason, and its releases by
strategy and phase, kept change by change.

Why: these are the state series of ``ccs-server``'s metrics (``ccs_containers``,
``ccs_containers_pending``, ``ccs_releases``). Counted from the records at scrape time they cost
every scrape a walk over every container of every cluster, on the event loop the dispatcher and
the API share (O(cluster) per scrape, every 15 s by default, whatever changed). The informer feeds
each record change here (O(1)), as it feeds the scheduler's :class:`~controlplane.scheduler.usage.Usage`,
and a scrape adds up a few counters per cluster. A count that falls to zero is dropped, so a
scrape costs the number of series, not the number of states ever seen.

What counts is what the scrape used to count from the records: every container record by its
reported state; a container that wants to run and is pending, by the kind of its reason
(:func:`~controlplane.scheduler.pending.pending_kind`); every release by its strategy (empty:
rolling) and phase.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import TypeVar

from ccs.v1 import resources_pb2 as pb
from controlplane.scheduler.pending import pending_kind

_STATES = {v: k.removeprefix("CONTAINER_STATE_").lower() for k, v in pb.ContainerState.items()}
_PHASES = {v: k.removeprefix("RELEASE_PHASE_").lower() for k, v in pb.ReleasePhase.items()}


def _pending(c: pb.Container) -> str | None:
    if c.status.state == pb.CONTAINER_STATE_PENDING and c.desired_state == pb.DESIRED_STATE_RUNNING:
        return pending_kind(c.status.message)
    return None


K = TypeVar("K")


def _add(counter: Counter[K], key: K, sign: int) -> None:
    n = counter[key] + sign
    if n:
        counter[key] = n
    else:
        del counter[key]


@dataclass
class StateCounts:
    containers: Counter[str] = field(default_factory=Counter)  # state name -> records
    pending: Counter[str] = field(default_factory=Counter)  # pending kind -> records
    releases: Counter[tuple[str, str]] = field(default_factory=Counter)  # (strategy, phase) -> records

    def container(self, old: pb.Container | None, new: pb.Container | None) -> None:
        """A container record changed from ``old`` to ``new`` (None: absent)."""
        for c, sign in ((old, -1), (new, 1)):
            if c is None:
                continue
            _add(self.containers, _STATES.get(c.status.state, "unknown"), sign)
            if (kind := _pending(c)) is not None:
                _add(self.pending, kind, sign)

    def release(self, old: pb.Release | None, new: pb.Release | None) -> None:
        """A release record changed from ``old`` to ``new`` (None: absent)."""
        for r, sign in ((old, -1), (new, 1)):
            if r is not None:
                _add(self.releases, (r.spec.strategy or "rolling", _PHASES.get(r.status.phase, "unknown")), sign)
