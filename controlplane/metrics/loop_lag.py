"""How late the server's event loop runs what is due: ``ccs_event_loop_lag_seconds``.

Why: every RPC, the informer, the reconcilers and the agents' heartbeats share one event loop.
When a burst of synchronous work (a reconcile pass planning a large deploy, a full garbage
collection) holds it, heartbeats wait in gRPC's queue; past the agents' patience they reconnect
and past the liveness deadline their nodes are declared down (issue 15's 50,000-container runs).
RPC latencies show that only indirectly; the lag of a timer says it directly, as Node.js'
``monitorEventLoopDelay`` does. A task sleeps :data:`PERIOD` and records how much later than
that it woke; the histogram's largest buckets are the stalls.
"""

from __future__ import annotations

import asyncio
from typing import Protocol

PERIOD = 0.25
"""Seconds between samples: 4 wake-ups a second, nothing next to the loop's own work."""
LAG_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)


class Observer(Protocol):
    def observe(self, amount: float) -> None: ...  # a prometheus_client Histogram


async def measure_loop_lag(histogram: Observer, period: float = PERIOD) -> None:
    """Sample forever (cancel to stop): each sample is the wake-up's lateness, never negative."""
    loop = asyncio.get_running_loop()
    while True:
        asked = loop.time()
        await asyncio.sleep(period)
        histogram.observe(max(0.0, loop.time() - asked - period))
