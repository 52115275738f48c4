"""`show stat` rows -> cumulative per-container counters. Pure.

HAProxy's counters live in the worker process: a reload or a restart starts them at zero.
Canary analysis compares cumulative counters over time, so a drop would read as a negative
rate (or hide 5xx). `CounterBook` therefore keeps per-(backend, server) counters monotonic:
when a raw value goes down it adds the last raw value seen to a carried base. The supervisor
also feeds it a reading right before each reload, so at most the requests of the last instant
before a reset are lost.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from google.protobuf import timestamp_pb2

from ccs.v1 import resources_pb2

from .config import ServerKey, ServerRef
from .runtime_api import counter

SERVER_ROW = "2"  # `show stat` type column: 0 frontend, 1 backend, 2 server


@dataclass(frozen=True, slots=True)
class Counters:
    requests: int = 0
    responses_5xx: int = 0
    connection_errors: int = 0

    def __add__(self, other: Counters) -> Counters:
        return Counters(
            self.requests + other.requests,
            self.responses_5xx + other.responses_5xx,
            self.connection_errors + other.connection_errors,
        )


def raw_counters(rows: Iterable[Mapping[str, str]]) -> dict[ServerKey, Counters]:
    """Server rows only: requests = stot, 5xx = hrsp_5xx, connection errors = econ + eresp."""
    out: dict[ServerKey, Counters] = {}
    for row in rows:
        if row.get("type") != SERVER_ROW:
            continue
        r = dict(row)
        out[(r.get("pxname", ""), r.get("svname", ""))] = Counters(
            counter(r, "stot"), counter(r, "hrsp_5xx"), counter(r, "econ") + counter(r, "eresp")
        )
    return out


@dataclass(slots=True)
class CounterBook:
    """Monotonic counters per (backend, server) across HAProxy resets."""

    _last: dict[ServerKey, Counters] = field(default_factory=dict)
    _carried: dict[ServerKey, Counters] = field(default_factory=dict)

    def observe(self, raw: Mapping[ServerKey, Counters]) -> dict[ServerKey, Counters]:
        out: dict[ServerKey, Counters] = {}
        for key, now in raw.items():
            last = self._last.get(key)
            if last is not None and (
                now.requests < last.requests
                or now.responses_5xx < last.responses_5xx
                or now.connection_errors < last.connection_errors
            ):
                self._carried[key] = self._carried.get(key, Counters()) + last
            self._last[key] = now
            out[key] = self._carried.get(key, Counters()) + now
        for key in self._carried.keys() | self._last.keys():  # gone from this reading: keeps its total
            if key not in raw:
                out[key] = self._carried.get(key, Counters()) + self._last.get(key, Counters())
        return out

    def reset_expected(self) -> None:
        """The next reading comes from a fresh process: carry everything seen so far."""
        for key, last in self._last.items():
            self._carried[key] = self._carried.get(key, Counters()) + last
        self._last.clear()


def per_container(
    totals: Mapping[ServerKey, Counters], servers: Mapping[ServerKey, ServerRef]
) -> list[resources_pb2.BackendStats]:
    """Sum over the backends a container serves in (routes, A/B halves); unknown servers dropped."""
    sums: dict[ServerRef, Counters] = {}
    for key, c in totals.items():
        ref = servers.get(key)
        if ref is not None:
            sums[ref] = sums.get(ref, Counters()) + c
    return [
        resources_pb2.BackendStats(
            application=ref.application, service=ref.service, container=ref.container,
            requests=c.requests, responses_5xx=c.responses_5xx, connection_errors=c.connection_errors,
        )
        for ref, c in sorted(sums.items(), key=lambda kv: (kv[0].application, kv[0].service, kv[0].container))
    ]


def router_stats(
    backends: list[resources_pb2.BackendStats], *, node: str, version: int, now: float
) -> resources_pb2.RouterStats:
    ts = timestamp_pb2.Timestamp()
    ts.FromNanoseconds(int(now * 1e9))
    return resources_pb2.RouterStats(node=node, collected_at=ts, backends=backends, routing_version=version)
