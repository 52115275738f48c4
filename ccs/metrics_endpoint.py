"""The HTTP endpoint Prometheus scrapes, for ``ccs-server`` and ``ccs-agent`` alike (the agent may
not import the control plane): prometheus-client's own server on a registry.

Why the library's server: it answers ``/metrics`` in the text and OpenMetrics formats (content
negotiation, gzip, HEAD) in a daemon thread of its own, so a busy event loop delays only the state
series (see :mod:`.state`), never the endpoint. It serves every path; ``/metrics`` is the one
documented.
"""

from __future__ import annotations

import threading
from wsgiref.simple_server import WSGIServer

from prometheus_client import CollectorRegistry, start_http_server


class MetricsEndpoint:
    """A started endpoint; ``port`` is the bound one (useful with port 0)."""

    def __init__(self, registry: CollectorRegistry, host: str, port: int) -> None:
        self._server: WSGIServer
        self._thread: threading.Thread
        self._server, self._thread = start_http_server(port, addr=host, registry=registry)
        self.host = host
        self.port = int(self._server.server_port)

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}/metrics"

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)
