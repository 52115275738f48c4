"""``wait_for`` and ``until``: the bounded waits for a condition in the integration and e2e
tests (``until`` for async probes, on the test's event loop).

A test that drives real processes (etcd, ccs-server, agents, dockerd) waits for the state it
needs, never for a time: the bound only turns a hang into a failure that names what was awaited
and the last value (or error) seen, which is what one needs to read a failure from CI.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
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


async def until(what: str, probe: Callable[[], Awaitable[T]], timeout: float = 60.0, interval: float = 0.2) -> T:
    """``wait_for`` for an async ``probe``: await it until it returns something truthy, and
    return that (an exception counts as "not yet" and is kept for the failure message)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    last: Any = None
    while True:
        try:
            value = await probe()
            if value:
                return value
            last = value
        except Exception as exc:
            last = f"{type(exc).__name__}: {exc}"
        if loop.time() > deadline:
            pytest.fail(f"timed out after {timeout:.0f}s waiting for {what}; last seen: {last!r}")
        await asyncio.sleep(interval)
