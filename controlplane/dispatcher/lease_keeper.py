"""The liveness lease kept alive from a thread, so that a busy event loop does not lose it.

Why: :class:`~controlplane.dispatcher.liveness.NodeLiveness` kept its lease alive from the
event loop. Under a large deploy the loop was held for seconds at a time (issue 15: 50,000
containers on 1,000 hollow nodes), the keep-alive's answer waited behind that work, the lease
lapsed in etcd, and every node this replica vouched for lost its alive key at once: the leader
saw them all unheard, declared them down and placed their containers again (8,000-11,800 extra
placements per run), while 785-1,222 agents were refused "no live etcd lease" and reconnected,
adding the load of a full assignment set each. A replica whose loop is slow is not a dead
replica; the nodes it hears are still heard (their heartbeats wait in its gRPC queue, and the
sweep does not count its own stall against them, see ``NodeLiveness.sweep``).

So a thread with a synchronous gRPC channel of its own refreshes the lease every third of its
TTL, independently of the loop, *while the loop shows signs of life*: the sweep, which runs
every 0.5 s, must have run within :data:`LOOP_STALL_LIMIT`. A loop wedged for good (a deadlock,
an endless synchronous step) stops the refreshes and the lease lapses as before, so a replica
that can no longer hear anyone cannot vouch for its nodes forever. The loop's own keep-alive
stays: it replaces a lapsed lease and puts the keys again, which needs the loop anyway.

The time credited to a refresh is when it was *sent*, not when its answer came back: etcd
restarted the TTL no earlier than the request left, so the replica never believes its lease
younger than it is.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

import grpc
import structlog
from aetcd import rpc

log = structlog.get_logger("ccs.liveness")

LOOP_STALL_LIMIT = 30.0
"""Seconds without a sweep after which the thread lets the lease go (the loop is taken for wedged)."""


class LeaseKeeper:
    """Refreshes ``lease()`` every ``period`` seconds from a daemon thread; ``kept(lease, sent_at)``
    is called (on that thread) for every refresh etcd confirmed."""

    def __init__(
        self,
        channel: Callable[[], grpc.Channel],
        lease: Callable[[], int],
        kept: Callable[[int, float], None],
        loop_seen: Callable[[], float],
        *,
        period: float,
        stall_limit: float = LOOP_STALL_LIMIT,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self._channel_factory, self._lease, self._kept, self._loop_seen = channel, lease, kept, loop_seen
        self.period, self.stall_limit, self._monotonic = period, stall_limit, monotonic
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.refreshed = 0  # confirmed refreshes (tests and logs)
        self.withheld = 0  # refreshes not sent because the loop looked wedged

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="liveness-lease", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Stop refreshing (the lease is left to expire, as NodeLiveness.stop leaves it)."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=self.period + 5)

    def _run(self) -> None:
        channel = self._channel_factory()
        stub = rpc.LeaseStub(channel)
        wedged = failing = False
        try:
            while not self._stop.wait(self.period):
                lease = self._lease()
                if not lease:
                    continue
                if self._monotonic() - self._loop_seen() > self.stall_limit:
                    self.withheld += 1
                    if not wedged:
                        log.error("event loop has not swept for longer than the limit; the liveness lease "
                                  "is left to lapse", limit_seconds=self.stall_limit)
                    wedged = True
                    continue
                wedged = False
                sent = self._monotonic()
                try:
                    for reply in stub.LeaseKeepAlive(iter([rpc.LeaseKeepAliveRequest(ID=lease)]),
                                                     timeout=self.period):
                        if reply.TTL > 0:
                            self.refreshed += 1
                            self._kept(lease, sent)
                        break
                except grpc.RpcError as exc:
                    # etcd out of reach: the loop's keep-alive also sees it and takes a new lease.
                    if not failing:
                        log.warning("liveness lease not refreshed from the keeper's thread", error=str(exc.code()))
                    failing = True
                else:
                    failing = False
        finally:
            channel.close()
