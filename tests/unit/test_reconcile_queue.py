"""``WorkQueue``: per-key serial, parallel across keys, backoff per key, timed requeues.

Each test makes its condition happen deterministically: a reconcile function blocks on an
event the test sets, so "a key is added while it is being processed" is a fact, not a race.
Delays are tiny and only awaited (every wait has a generous safety timeout), never measured.
"""

from __future__ import annotations

import asyncio
from collections import Counter

import pytest

from controlplane.reconcile.queue import PermanentError, Result, WorkQueue

SAFETY = 10.0  # seconds: only to end a broken test, never an assertion about speed


class Recorder:
    """A reconcile function whose behaviour per call the test scripts."""

    def __init__(self) -> None:
        self.calls: list[str] = []
        self.active: Counter[str] = Counter()
        self.overlaps = 0
        self.gate: dict[str, asyncio.Event] = {}
        self.started: dict[str, asyncio.Event] = {}
        self.script: dict[str, list[Result | Exception]] = {}
        self.done = asyncio.Condition()

    async def __call__(self, key: str) -> Result:
        self.calls.append(key)
        self.active[key] += 1
        if self.active[key] > 1:
            self.overlaps += 1
        self.started.setdefault(key, asyncio.Event()).set()
        try:
            gate = self.gate.get(key)
            if gate is not None:
                await gate.wait()
            outcome = self.script.get(key, []).pop(0) if self.script.get(key) else Result()
            if isinstance(outcome, Exception):
                raise outcome
            return outcome
        finally:
            self.active[key] -= 1
            async with self.done:
                self.done.notify_all()

    async def wait_calls(self, key: str, n: int) -> None:
        async with asyncio.timeout(SAFETY):
            async with self.done:
                await self.done.wait_for(lambda: self.calls.count(key) >= n and not self.active[key])


@pytest.fixture
def rec() -> Recorder:
    return Recorder()


async def started(q: WorkQueue) -> WorkQueue:
    q.start()
    return q


async def test_a_key_added_while_it_runs_runs_once_more_afterwards_never_twice_at_once(rec: Recorder) -> None:
    q = await started(WorkQueue(rec, workers=4))
    try:
        rec.gate["a"] = asyncio.Event()
        q.add("a")
        async with asyncio.timeout(SAFETY):
            await rec.started.setdefault("a", asyncio.Event()).wait()
        for _ in range(3):  # three changes while the pass runs: one more pass covers them
            q.add("a")
        rec.gate["a"].set()
        await rec.wait_calls("a", 2)
        await asyncio.sleep(0)
        assert rec.calls.count("a") == 2 and rec.overlaps == 0
    finally:
        await q.stop()


async def test_different_keys_run_in_parallel(rec: Recorder) -> None:
    q = await started(WorkQueue(rec, workers=2))
    try:
        rec.gate["a"] = asyncio.Event()
        q.add("a")
        q.add("b")  # runs while "a" is blocked: a second worker took it
        await rec.wait_calls("b", 1)
        assert rec.active["a"] == 1
        rec.gate["a"].set()
        await rec.wait_calls("a", 1)
    finally:
        await q.stop()


async def test_a_failure_backs_off_and_retries_and_a_success_resets_the_count(rec: Recorder) -> None:
    q = await started(WorkQueue(rec, workers=1, base_delay=0.001, max_delay=0.01))
    try:
        rec.script["a"] = [RuntimeError("etcd down"), RuntimeError("etcd down"), Result()]
        q.add("a")
        await rec.wait_calls("a", 3)
        assert q._failures == {}
        rec.script["a"] = [RuntimeError("once more")]
        q.add("a")
        await rec.wait_calls("a", 5)  # a new failure is retried too
        assert q._failures == {}
    finally:
        await q.stop()


async def test_a_permanent_error_is_not_retried(rec: Recorder) -> None:
    q = await started(WorkQueue(rec, workers=1, base_delay=0.001))
    try:
        rec.script["a"] = [PermanentError("bad data")]
        q.add("a")
        q.add("b")
        await rec.wait_calls("a", 1)
        await rec.wait_calls("b", 1)
        assert "a" not in q._timers and "a" not in q._failures
    finally:
        await q.stop()


async def test_requeue_after_runs_the_key_again(rec: Recorder) -> None:
    q = await started(WorkQueue(rec, workers=1))
    try:
        rec.script["a"] = [Result(requeue_after=0.001), Result()]
        q.add("a")
        await rec.wait_calls("a", 2)
        assert "a" not in q._timers
    finally:
        await q.stop()


async def test_add_after_keeps_the_earliest_timer(rec: Recorder) -> None:
    q = WorkQueue(rec, workers=1)
    q.add_after("a", 60.0)
    first = q._timers["a"].when()
    q.add_after("a", 120.0)  # later: ignored
    assert q._timers["a"].when() == first
    q.add_after("a", 0.001)  # earlier: replaces it
    assert q._timers["a"].when() < first
    q.start()
    try:
        await rec.wait_calls("a", 1)
        assert "a" not in q._timers
    finally:
        await q.stop()


def test_backoff_doubles_with_jitter_up_to_the_cap() -> None:
    async def never(key: str) -> Result:
        raise AssertionError

    q = WorkQueue(never, base_delay=0.05, max_delay=30.0)
    for failures, nominal in ((1, 0.05), (2, 0.1), (5, 0.8), (20, 30.0)):
        for _ in range(20):
            assert 0.8 * nominal <= q.backoff(failures) <= 1.2 * nominal
