"""Template parses run in their own bounded pool (controlplane/api/template_parse.py)."""

from __future__ import annotations

import asyncio
import threading
from typing import Any

import pytest

from controlplane.api import template_parse
from controlplane.compose import parse_template

TEMPLATE = "services:\n  web:\n    image: local/busybox:1\n"


class Gate:
    """A stand-in parse that blocks until released and records how many run at once."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.release = threading.Event()
        self.running = 0
        self.started = 0
        self.most = 0

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        with self.lock:
            self.running += 1
            self.started += 1
            self.most = max(self.most, self.running)
        try:
            self.release.wait(30)
            return parse_template(*args, **kwargs)
        finally:
            with self.lock:
                self.running -= 1


async def until(predicate: Any) -> None:
    for _ in range(3000):
        if predicate():
            return
        await asyncio.sleep(0.01)
    raise AssertionError("condition not reached")


async def test_parses_beyond_the_pool_wait_and_a_cancelled_waiter_never_starts(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    gate = Gate()
    monkeypatch.setattr(template_parse, "parse_template", gate)
    n = template_parse.PARSE_THREADS
    calls = [asyncio.create_task(template_parse.parse_checked(TEMPLATE, {}, {}, f"a{i}", 5.0))
             for i in range(n + 3)]
    await until(lambda: gate.running == n)
    waiting = calls[-1]
    waiting.cancel()  # queued behind the pool: cancelled before it starts
    # The cancel reaches the pool's queue one loop turn later (a done callback of the wrapping
    # future, which runs before the task's own wake-up): wait for the task to end before the
    # gate opens, or a freed thread can take the queued parse first.
    await asyncio.wait([waiting])
    gate.release.set()
    done = await asyncio.gather(*calls, return_exceptions=True)
    assert isinstance(done[-1], asyncio.CancelledError)
    assert all(p.services["web"].image == "local/busybox:1" for p in done[:-1])  # type: ignore[union-attr]
    assert gate.most == n  # never more at once than the pool has threads
    assert gate.started == n + 2  # the cancelled one never ran
