"""HAProxy's built-in Prometheus exporter, on a loopback port of the node (``--router-metrics-port``).

HAProxy 2.6 as Debian builds it carries the exporter (``haproxy -vv`` lists ``USE_PROMEX=1`` /
``PROMEX``): ``http-request use-service prometheus-exporter`` answers with every frontend,
backend and server counter as ``haproxy_*`` series, read inside HAProxy with no stats socket
round trip and no copy in the agent. It sits in a frontend of its own bound to 127.0.0.1 only:
the counters name every application's backends and servers, which is not for the node's
ingress; a Prometheus on the node (or a scraper through an SSH tunnel, a node exporter's
textfile relay...) reads it there. Only ``/metrics`` is served; any other path is a 404.

Pure: settings in, config lines out.
"""

from __future__ import annotations

from .settings import RouterSettings

FRONTEND = "ccs_metrics"


def exporter_frontend(settings: RouterSettings) -> list[str]:
    """The exporter's frontend lines (none when ``settings.metrics_port`` is 0)."""
    if not settings.metrics_port:
        return []
    return [
        f"frontend {FRONTEND}",
        f"    bind 127.0.0.1:{settings.metrics_port}",
        "    no log",
        "    http-request use-service prometheus-exporter if { path /metrics }",
        '    http-request return status 404 content-type text/plain string "only /metrics is served here"',
        "",
    ]
