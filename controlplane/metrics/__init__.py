"""Prometheus metrics of ``ccs-server`` (``--metrics-listen``, default ``127.0.0.1:9464``).

Design choices:

- **One registry per server** (:class:`ServerMetrics`), never prometheus-client's global default:
  tests start several servers in one process, and two servers on the default registry would
  refuse each other's metric names (or, worse, add up their counts).
- **Counted where the work happens, read from the cache where it is state.** RPCs are counted
  by a ``grpc.aio`` interceptor (:mod:`.rpc`) listed first, so it sees the code a refusal by
  the token check or the request decoder answered with; etcd transactions by a callback
  :class:`~controlplane.store.etcd.Etcd` calls at its one ``txn`` (every write of the server
  goes through it); reconcile passes by a callback of the orchestrator. Pending containers by
  reason, releases by strategy and phase, connected agents and the work queue's depth are
  *state*: :mod:`.state` reads them from the informer's cache (counts it keeps per change,
  :mod:`controlplane.state_counts`) and the assignment hub at scrape time, so they cannot drift
  from what ``ccs`` shows.
- **The scrape runs in prometheus-client's HTTP thread; the cache belongs to the event loop.**
  The state collector hops onto the loop (``run_coroutine_threadsafe``) to read it, so a scrape
  never iterates a dict the loop is changing.
- **Bounded labels.** A pending container's reason is free text naming nodes and sizes; the
  label is its kind (:mod:`controlplane.scheduler.pending`), a fixed set. RPC labels come from the registered
  methods only (an unknown method is not counted), so a client cannot grow the label space.
- The store, the orchestrator and the dispatcher do not import this package: they take plain
  callables, and the server wires them (the layers contract keeps ``metrics`` just below it).
"""

from controlplane.scheduler.pending import PENDING_KINDS, pending_kind

from .placements import counting_placements, placed
from .rpc import MetricsInterceptor
from .series import ServerMetrics
from .state import StateCollector, StateSources

__all__ = [
    "PENDING_KINDS",
    "MetricsInterceptor",
    "ServerMetrics",
    "StateCollector",
    "StateSources",
    "counting_placements",
    "pending_kind",
    "placed",
]
