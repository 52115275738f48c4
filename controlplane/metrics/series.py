"""The series ``ccs-server`` registers, on a registry of its own (see the package docstring).

Names follow Prometheus' conventions: the ``ccs_`` prefix, base units (``_seconds``), counters
ending in ``_total``. The state series (pending containers, releases, agents, queue depth) are
added by :class:`~controlplane.metrics.state.StateCollector`; their names are listed here too
(:data:`STATE_SERIES`) so the dashboard test can check every expression against one list.
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from controlplane.gc_tuning import GcCollector, gc_times

from . import loop_lag

# Seconds: an RPC from a cache read (sub-millisecond) to a deploy's template parse (seconds).
RPC_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
PASS_BUCKETS = (0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
TXN_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 10.0)

STATE_SERIES = (
    "ccs_containers_pending",
    "ccs_containers",
    "ccs_releases",
    "ccs_agents_connected",
    "ccs_reconcile_queue_depth",
    "ccs_leader",
)


class ServerMetrics:
    """Every metric object of one server, on ``self.registry``."""

    def __init__(self) -> None:
        self.registry = r = CollectorRegistry()
        self.rpc_handled = Counter(
            "ccs_rpc_handled_total", "RPCs completed, by service, method and gRPC status code.",
            ["service", "method", "code"], registry=r)
        self.rpc_seconds = Histogram(
            "ccs_rpc_handling_seconds", "Time from an RPC's start to its status, by service, method and code "
            "(a stream's whole life for streaming RPCs).", ["service", "method", "code"],
            buckets=RPC_BUCKETS, registry=r)
        self.streams_open = Gauge(
            "ccs_rpc_streams_open", "Streaming RPCs open now (Watch, WatchAudit, agent sessions, log relays).",
            ["service", "method"], registry=r)
        self.pass_seconds = Histogram(
            "ccs_reconcile_pass_seconds", "Duration of one reconcile pass over a cluster (plan and commit), "
            "by outcome: done, conflict (some chunks met newer writes; replanned), error, or behind (no "
            "plan: the watch cache had not caught up with the leader's last writes within 1 s; the time "
            "waited).",
            ["outcome"], buckets=PASS_BUCKETS, registry=r)
        self.placements = Counter(
            "ccs_placements_total", "Containers placed on a node (committed to etcd), seen by the leader.",
            registry=r)
        self.txn_seconds = Histogram(
            "ccs_etcd_txn_seconds", "etcd transactions of this server, by outcome: committed, conflict "
            "(a compare failed: someone wrote first) or error.", ["outcome"], buckets=TXN_BUCKETS, registry=r)
        self.loop_lag = Histogram(
            "ccs_event_loop_lag_seconds", "How much later than due the event loop ran a timer sampled "
            "every 0.25 s (controlplane.metrics.loop_lag): the loop's stalls, which delay every RPC and "
            "heartbeat.", buckets=loop_lag.LAG_BUCKETS, registry=r)
        self.txn_conflicts = Counter(
            "ccs_etcd_txn_conflicts_total", "etcd transactions whose compares failed (optimistic concurrency "
            "conflicts).", registry=r)

        # The process's time in the cyclic garbage collector (controlplane.gc_tuning), read at scrape.
        r.register(GcCollector(gc_times()))

    def observe_txn(self, seconds: float, outcome: str) -> None:
        """The callback :class:`~controlplane.store.etcd.Etcd` calls after every transaction."""
        self.txn_seconds.labels(outcome).observe(seconds)
        if outcome == "conflict":
            self.txn_conflicts.inc()

    def observe_pass(self, seconds: float, outcome: str) -> None:
        """The callback the orchestrator calls after every pass."""
        self.pass_seconds.labels(outcome).observe(seconds)
