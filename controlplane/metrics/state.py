"""State series read at scrape time: pending containers by reason, containers by state,
releases by strategy and phase, connected agents, the reconcile queue's depth, leadership.

prometheus-client calls :meth:`StateCollector.collect` in its HTTP thread; the informer's cache
and the hub belong to the event loop, so the reading is done there (``run_coroutine_threadsafe``)
and the thread only waits for the result. A loop too busy to answer within
:data:`SCRAPE_TIMEOUT` gives a scrape without these series rather than a hung scrape.
"""

from __future__ import annotations

import asyncio
import threading
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass

from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from ccs.v1 import resources_pb2 as pb
from controlplane.informer import Informer

from .pending import PENDING_KINDS, pending_kind

SCRAPE_TIMEOUT = 5.0

_STATES = {v: k.removeprefix("CONTAINER_STATE_").lower() for k, v in pb.ContainerState.items()}
_PHASES = {v: k.removeprefix("RELEASE_PHASE_").lower() for k, v in pb.ReleasePhase.items()}


@dataclass
class StateSources:
    """Where the state series come from; the callables run on the event loop."""

    informer: Informer
    agents_connected: Callable[[], int]
    queue_depth: Callable[[], int]
    is_leader: Callable[[], bool]


def _families(src: StateSources) -> list[Metric]:
    pending: Counter[str] = Counter({k: 0 for k in PENDING_KINDS})
    states: Counter[str] = Counter()
    releases: Counter[tuple[str, str]] = Counter()
    for state in src.informer.clusters.values():
        for c in state.containers.values():
            states[_STATES.get(c.status.state, "unknown")] += 1
            if c.status.state == pb.CONTAINER_STATE_PENDING and c.desired_state == pb.DESIRED_STATE_RUNNING:
                pending[pending_kind(c.status.message)] += 1
        for r in state.releases.values():
            releases[(r.spec.strategy or "rolling", _PHASES.get(r.status.phase, "unknown"))] += 1
    out: list[Metric] = []
    fam = GaugeMetricFamily("ccs_containers_pending", "Containers that want to run and have no node, by the "
                            "kind of reason (see README, Metrics).", labels=["reason"])
    for kind, n in sorted(pending.items()):
        fam.add_metric([kind], n)
    out.append(fam)
    fam = GaugeMetricFamily("ccs_containers", "Container records, by reported state.", labels=["state"])
    for name, n in sorted(states.items()):
        fam.add_metric([name], n)
    out.append(fam)
    fam = GaugeMetricFamily("ccs_releases", "Release records, by strategy and phase.", labels=["strategy", "phase"])
    for (strategy, phase), n in sorted(releases.items()):
        fam.add_metric([strategy, phase], n)
    out.append(fam)
    out.append(GaugeMetricFamily("ccs_agents_connected", "Nodes with an open agent session on this server.",
                                 value=src.agents_connected()))
    out.append(GaugeMetricFamily("ccs_reconcile_queue_depth", "Clusters waiting in the reconcile queue "
                                 "(0 on a server that does not lead).", value=src.queue_depth()))
    out.append(GaugeMetricFamily("ccs_leader", "1 if this server leads (runs the reconcilers), else 0.",
                                 value=1 if src.is_leader() else 0))
    return out


class StateCollector(Collector):
    """Collects :func:`_families` on ``loop`` (see the module docstring)."""

    def __init__(self, loop: asyncio.AbstractEventLoop, sources: StateSources) -> None:
        self._loop = loop
        self._sources = sources
        self._loop_thread = threading.get_ident()

    def collect(self) -> Iterator[Metric]:
        yield from self._read()

    def _read(self) -> Iterable[Metric]:
        if threading.get_ident() == self._loop_thread:  # called on the loop itself (generate_latest in a test)
            return _families(self._sources)

        async def read() -> list[Metric]:
            return _families(self._sources)

        try:
            return asyncio.run_coroutine_threadsafe(read(), self._loop).result(SCRAPE_TIMEOUT)
        except Exception:  # the loop is gone or too busy: this scrape goes without the state series
            return []
