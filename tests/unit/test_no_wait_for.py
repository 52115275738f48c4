"""No ``asyncio.wait_for`` in ccs's own code.

On Python 3.11 (the version ccs supports from), ``wait_for`` returns the result of an awaitable
that completes in the same loop turn as the caller's cancellation, and the cancellation is lost:
the task goes on as if it had not been cancelled. The agent's heartbeat stream hung
``Agent.stop()`` that way (tests/unit/test_answered_stream.py makes that turn happen). From 3.12
``wait_for`` is built on ``asyncio.timeout``, which has no such hole; until 3.11 is dropped,
``async with asyncio.timeout(t):`` is the one way to bound a wait here.
"""

from __future__ import annotations

import re

from tests.conftest import ROOT

PACKAGES = ("ccs", "cli", "controlplane", "nodeagent")


def test_production_code_bounds_waits_with_asyncio_timeout_not_wait_for() -> None:
    uses = [
        f"{path.relative_to(ROOT)}:{n}"
        for package in PACKAGES
        for path in sorted((ROOT / package).rglob("*.py"))
        for n, line in enumerate(path.read_text().splitlines(), 1)
        if re.search(r"\bwait_for\(", line) and "asyncio" in line
    ]
    assert uses == [], "asyncio.wait_for loses a cancellation on Python 3.11; use asyncio.timeout: " + ", ".join(uses)
