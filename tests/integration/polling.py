"""``wait_for``: the one bounded wait for a condition in the integration and e2e tests.

A test that drives real processes (etcd, ccs-server, agents, dockerd) waits for the state it
needs, never for a time: the bound only turns a hang into a failure that names what was awaited
and the last value (or error) seen, which is what one needs to read a failure from CI.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any, TypeVar

import pytest

T = TypeVar("T")


def wait_for(what: str, probe: Callable[[], T], timeout: float = 60.0, interval: float = 0.3) -> T:
    """Poll ``probe`` until it returns something truthy, and return that.

    An exception from ``probe`` counts as "not yet" (a server may be restarting, a router not
    listening yet) and is kept for the failure message, as is the last falsy value.
    """
    deadline = time.monotonic() + timeout
    last: Any = None
    while True:
        try:
            value = probe()
            if value:
                return value
            last = value
        except Exception as exc:
            last = f"{type(exc).__name__}: {exc}"
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout:.0f}s waiting for {what}; last seen: {last!r}")
        time.sleep(interval)
