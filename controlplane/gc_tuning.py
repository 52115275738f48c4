"""CPython's cyclic garbage collector, set for a server that keeps a whole cluster in memory.

Why this exists: the server's event loop thread does everything (RPCs, the informer, the
reconcilers), so the time it spends in the cyclic collector is time no agent is answered. With
CPython's defaults (collect the young generation every 700 net allocations, the middle one every
10 young collections, everything every 10 middle ones) one deploy of 20,000 containers on 500
hollow nodes ran 3,379 / 307 / 26 collections of generations 0 / 1 / 2 and spent **12.9 s** of
the loop in them, each full collection a 0.32 s stall (twelfth session, measured through
``gc.callbacks``). Almost every object the server makes (protobuf messages, dicts of an RPC,
futures) dies young by reference counting; the frequent young collections only promote the few
still alive at that instant into the older generations, which then fill and force the full
collections that walk the whole heap. A young threshold of 100,000 lets those objects die first:
the same deploy spent 1.05 s in the collector (9 / 1 / 0 collections).

Why not turn the collector off (``gc.disable()``) or never run full collections: a server runs
for weeks, and cyclic garbage (an exception's traceback holding its frame, a closure referring
to itself) is only ever freed by the collector. The middle and old thresholds stay CPython's,
so full collections still happen, just after 100,000 x 10 x 10 net allocations instead of
700 x 10 x 10 (CPython also skips a full collection until a quarter of the long-lived objects
are new).

``gc.freeze()`` after the informer's first list moves what the server holds at start (modules,
the listed cluster) into the permanent generation, which no collection walks again. Objects
frozen there are still freed by reference counting; only a cycle among them would stay, and
those objects are the cache and the program itself, which live as long as the process anyway.

Both are process-wide, so only the ``ccs-server`` entry point sets them (:func:`tune`,
:func:`freeze_startup_heap`), never a :class:`~controlplane.server.Server` built inside another
program (the tests run many in one process). The time spent is exported by every server:
``ccs_gc_seconds_total`` and ``ccs_gc_collections_total`` by generation
(:class:`GcCollector`), so an operator sees what the collector costs at their cluster's size.
"""

from __future__ import annotations

import gc
import threading
import time
from collections.abc import Iterator
from typing import Any

from prometheus_client.core import CounterMetricFamily, Metric
from prometheus_client.registry import Collector

# The young generation's threshold ccs-server runs with (CPython's default is 700).
DEFAULT_YOUNG_THRESHOLD = 100_000


def tune(young_threshold: int) -> None:
    """Set the young generation's threshold, keeping CPython's for the older two; 0 keeps
    CPython's own thresholds (``--gc-young-threshold 0``)."""
    if young_threshold > 0:
        _, middle, old = gc.get_threshold()
        gc.set_threshold(young_threshold, middle, old)


def freeze_startup_heap() -> None:
    """Everything tracked now goes to the permanent generation (see the module docstring)."""
    gc.collect()  # what is garbage already should not be frozen
    gc.freeze()


def settings() -> dict[str, object]:
    """What the server logs once it has started: the thresholds and how many objects are frozen."""
    return {"thresholds": list(gc.get_threshold()), "frozen_objects": gc.get_freeze_count()}


class GcTimes:
    """Collections and seconds spent in them, by generation, counted by a ``gc.callbacks`` hook.

    One per process (:func:`gc_times`): the hook sees every collection of the interpreter.
    The callback runs on whichever thread triggered the collection, with the GIL held, so plain
    list updates are safe; the lock only keeps a reader's three numbers of one generation
    consistent."""

    def __init__(self) -> None:
        self.collections = [0, 0, 0]
        self.seconds = [0.0, 0.0, 0.0]
        self.collected = [0, 0, 0]
        self._started = 0.0
        self._lock = threading.Lock()

    def callback(self, phase: str, info: dict[str, Any]) -> None:
        if phase == "start":
            self._started = time.perf_counter()
            return
        generation = info["generation"]
        with self._lock:
            self.seconds[generation] += time.perf_counter() - self._started
            self.collections[generation] += 1
            self.collected[generation] += info["collected"]

    def snapshot(self) -> list[tuple[int, float, int]]:
        """(collections, seconds, objects collected) for generations 0, 1, 2."""
        with self._lock:
            return list(zip(self.collections, self.seconds, self.collected, strict=True))


_times: GcTimes | None = None
_times_lock = threading.Lock()


def gc_times() -> GcTimes:
    """The process's counter, hooked into ``gc.callbacks`` on first use."""
    global _times
    with _times_lock:
        if _times is None:
            _times = GcTimes()
            gc.callbacks.append(_times.callback)
        return _times


class GcCollector(Collector):
    """``ccs_gc_seconds_total`` and ``ccs_gc_collections_total`` by generation, read from the
    process's :class:`GcTimes` at scrape time."""

    def __init__(self, times: GcTimes) -> None:
        self._times = times

    def collect(self) -> Iterator[Metric]:
        seconds = CounterMetricFamily(
            "ccs_gc_seconds", "Time this process spent in CPython's cyclic garbage collector, by "
            "generation (2: full collections, each a stall of the event loop).", labels=["generation"])
        runs = CounterMetricFamily(
            "ccs_gc_collections", "Collections of CPython's cyclic garbage collector, by generation.",
            labels=["generation"])
        for generation, (n, s, _) in enumerate(self._times.snapshot()):
            seconds.add_metric([str(generation)], s)
            runs.add_metric([str(generation)], n)
        yield seconds
        yield runs
