"""Small pure helpers shared by the e2e modules (no fixtures here: see conftest.py)."""

from __future__ import annotations

import urllib.request
from datetime import datetime
from typing import Any

# A PID-1 that exits at once on SIGTERM, so stops and removals never sit out a grace period.
IDLE = """["sh", "-c", "trap 'exit 0' TERM; while true; do sleep 1; done"]"""
# The hello example's health check: GET /health through busybox nc (wget may segfault here).
HEALTH_TEST = """["CMD-SHELL", "printf 'GET /health HTTP/1.0\\\\r\\\\n\\\\r\\\\n' | nc 127.0.0.1 8080 | grep -q ' 200 '"]"""


def fetch(url: str, timeout: float = 2.0) -> str:
    """GET from the root namespace without any proxy (the testbed is 10.77.0.0/24 only)."""
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    with opener.open(url, timeout=timeout) as resp:
        return str(resp.read().decode().strip())


def docker_time(value: str) -> float:
    """Docker's RFC 3339 timestamps (nanoseconds, ``Z``) as Unix seconds."""
    head, _, frac = value.rstrip("Z").partition(".")
    frac = (frac + "000000")[:6]
    return datetime.fromisoformat(f"{head}.{frac}+00:00").timestamp()


def per_host_counts(by_host: dict[str, list[dict[str, Any]]]) -> dict[str, int]:
    return {h: len(cs) for h, cs in by_host.items()}


def ids(by_host: dict[str, list[dict[str, Any]]]) -> set[str]:
    return {str(c["Id"]) for cs in by_host.values() for c in cs}
