"""The ``--metrics-listen`` value of ccs-server and ccs-agent: ``HOST:PORT``, or ``off``.

One definition for both processes (the agent may not import the control plane). Pure: no I/O.
"""

from __future__ import annotations

OFF = ("", "off", "none")


class MetricsListenError(ValueError):
    """The value is not ``HOST:PORT`` or ``off``; the message names the flag and why."""


def parse_metrics_listen(text: str, flag: str = "--metrics-listen") -> tuple[str, int] | None:
    """``(host, port)`` to serve metrics on, or None when metrics are turned off (``off`` or ``''``).

    Port 0 picks a free port (tests). IPv6 hosts are written in brackets (``[::1]:9464``).
    """
    text = text.strip()
    if text.lower() in OFF:
        return None
    host, sep, port_text = text.rpartition(":")
    if not sep or not host:
        raise MetricsListenError(f"{flag}: expected HOST:PORT or 'off', got {text!r}")
    host = host.strip("[]")
    if not host:
        raise MetricsListenError(f"{flag}: the host is empty in {text!r}")
    try:
        port = int(port_text)
    except ValueError:
        raise MetricsListenError(f"{flag}: the port must be a number, got {port_text!r}") from None
    if not 0 <= port <= 65535:
        raise MetricsListenError(f"{flag}: the port must be in 0-65535, got {port}")
    return host, port
