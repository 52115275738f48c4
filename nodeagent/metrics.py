"""Prometheus metrics of ``ccs-agent`` (``--metrics-listen``, default ``127.0.0.1:9465``).

One registry per :class:`AgentMetrics` (never prometheus-client's global default), so several
agents in one process (hollow nodes, tests) keep their counts apart. What is counted where:

- container operations and their latency, by operation and outcome:
  :class:`~nodeagent.runtime.metered.MeteredRuntime` wraps the agent's runtime, so every engine
  (Docker, the fake one) is measured the same way at the narrow interface;
- Docker API errors by kind: :class:`~nodeagent.runtime.docker_engine.DockerRuntime` reports
  each one where it maps the docker SDK's exceptions (its one place for that);
- router applies (by what they took: runtime API only, or a reload) and reloads:
  :class:`~nodeagent.router.Router`;
- heartbeat age: seconds since the control plane last answered a heartbeat (since the agent
  started, before the first answer), read at scrape time.

HAProxy's own counters are not copied here: HAProxy serves them itself (its built-in exporter,
``--router-metrics-port``), see :mod:`nodeagent.router.exporter`.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

OP_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0)
APPLY_BUCKETS = (0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)


class AgentMetrics:
    """Every metric object of one agent, on ``self.registry``."""

    def __init__(self, monotonic: Callable[[], float] = time.monotonic) -> None:
        self.registry = r = CollectorRegistry()
        self._monotonic = monotonic
        self._last_heartbeat = monotonic()
        self.operations = Counter(
            "ccs_agent_container_operations_total", "Container operations on the engine, by operation "
            "(prepare, create, start, stop, remove, exec, remove_app_resources) and outcome (ok, error).",
            ["op", "outcome"], registry=r)
        self.operation_seconds = Histogram(
            "ccs_agent_container_operation_seconds", "Time one container operation took (prepare includes "
            "an image pull), by operation and outcome.", ["op", "outcome"], buckets=OP_BUCKETS, registry=r)
        self.docker_errors = Counter(
            "ccs_agent_docker_errors_total", "Errors of the Docker Engine API, by kind (not_found, conflict, "
            "refused, server_error, unreachable).", ["kind"], registry=r)
        self.router_apply_seconds = Histogram(
            "ccs_agent_router_apply_seconds", "Time to put a routing table in place, by result (unchanged, "
            "weights, servers, certificates: runtime API only; reloaded; failed).", ["result"],
            buckets=APPLY_BUCKETS, registry=r)
        self.router_reloads = Counter(
            "ccs_agent_router_reloads_total", "HAProxy reloads (a new config), by outcome (ok, failed).",
            ["outcome"], registry=r)
        self.heartbeats = Counter(
            "ccs_agent_heartbeats_total", "Heartbeats sent, by outcome (ok, failed).", ["outcome"], registry=r)
        heartbeat_age = Gauge(
            "ccs_agent_heartbeat_age_seconds", "Seconds since the control plane last answered a heartbeat "
            "(since the agent started, before the first answer).", registry=r)
        heartbeat_age.set_function(lambda: self._monotonic() - self._last_heartbeat)

    def docker_error(self, kind: str) -> None:
        self.docker_errors.labels(kind).inc()

    def operation(self, op: str, outcome: str, seconds: float) -> None:
        self.operations.labels(op, outcome).inc()
        self.operation_seconds.labels(op, outcome).observe(seconds)

    def router_applied(self, result: str, seconds: float) -> None:
        self.router_apply_seconds.labels(result).observe(seconds)

    def router_reloaded(self, ok: bool) -> None:
        self.router_reloads.labels("ok" if ok else "failed").inc()

    def heartbeat(self, ok: bool) -> None:
        self.heartbeats.labels("ok" if ok else "failed").inc()
        if ok:
            self._last_heartbeat = self._monotonic()
