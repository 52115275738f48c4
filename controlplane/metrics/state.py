"""State series read at scrape time: pending containers by reason, containers by state,
releases by strategy and phase, connected agents, the reconcile queue's depth, leadership.
The first three are counts the informer keeps as records change, so a scrape costs the number
of series, not of containers.

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

from controlplane.informer import Informer
from controlplane.scheduler.pending import PENDING_KINDS

SCRAPE_TIMEOUT = 5.0



@dataclass
class StateSources:
    """Where the state series come from; the callables run on the event loop."""

    informer: Informer
    agents_connected: Callable[[], int]
    queue_depth: Callable[[], int]
    is_leader: Callable[[], bool]


def _families(src: StateSources) -> list[Metric]:
    """The series, from the counts the informer keeps per change (:mod:`controlplane.state_counts`):
    O(clusters x series), never a walk over the containers."""
    pending: Counter[str] = Counter({k: 0 for k in PENDING_KINDS})
    states: Counter[str] = Counter()
    releases: Counter[tuple[str, str]] = Counter()
    for state in src.informer.clusters.values():
        pending.update(state.counts.pending)
        states.update(state.counts.containers)
        releases.update(state.counts.releases)
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
