"""Status reporting: coalesce container status changes, send them in batches.

Why a coalescing buffer rather than a queue: only the latest state of a container matters to
the control plane, so a burst (PULLING, STARTING, RUNNING within a few ms) or an outage of
minutes costs one update per container, not one per change. Updates wait ~150 ms (or until
100 are pending) so that a release touching many containers becomes a few RPCs.

`StatusBatcher` is synchronous and clock-free (unit-tested without sleeping); `send_loop`
adds the timing and the RPC. A batch that fails to send goes back to the buffer unless a newer
status for the same container arrived meanwhile; the loop then raises so the session
reconnects, except after a timeout (below). Statuses equal to the last one sent are dropped, except right after a
(re)connect, when `forget_sent()` makes every container report once.

A container turning HEALTHY does not wait for the linger: it is what a rolling update waits for
before its next slot (and what routers and `depends_on: service_healthy` wait for), so it is
sent at once, with whatever else is pending. Only HEALTHY: a container without a health check
is RUNNING, and bursts of RUNNING (a deploy, a hollow node's thousands) keep coalescing.

A batch that timed out (DEADLINE_EXCEEDED: the server is slow, not gone) is put back and sent
again on the same session, up to :data:`TIMEOUTS_KEPT` times in a row. Ending the session there
(as before) cost the server a complete assignment set and network map per reconnect, the work
that made it slow: at 1,000 hollow nodes / 50,000 containers (issue 15) 2,212 sessions ended on
a "Deadline Exceeded". A status is the latest state of a container, so sending it twice is
harmless. The heartbeats keep judging whether the replica is alive (``heartbeat_patience``);
past the bound the session ends as it does on any other error.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable

import grpc

from ccs.cancellation import raise_if_cancelled
from ccs.v1 import agent_pb2, resources_pb2

from .status import same_report

Key = tuple[str, str, str]  # application, service, container name

DEFAULT_LINGER = 0.15
DEFAULT_MAX_BATCH = 100
TIMEOUTS_KEPT = 3
"""Timed-out status calls in a row sent again before the session ends: with the first, four
calls of the 30 s deadline (and the pauses), about two minutes of a server too slow to take a
status."""
TIMEOUT_PAUSE = 1.0
"""Seconds before a timed-out batch goes again: a server that answers DEADLINE_EXCEEDED at once
(a proxy's deadline, say) is not spun on."""


def key_of(u: agent_pb2.ContainerStatusUpdate) -> Key:
    return (u.application, u.service, u.container)


class StatusBatcher:
    """Latest-wins buffer of pending updates plus the last status sent per container."""

    def __init__(self, *, max_batch: int = DEFAULT_MAX_BATCH) -> None:
        if max_batch < 1:
            raise ValueError(f"max_batch: must be >= 1, got {max_batch}")
        self.max_batch = max_batch
        self._pending: dict[Key, agent_pb2.ContainerStatusUpdate] = {}
        self._sent: dict[Key, resources_pb2.ContainerStatus] = {}
        self._ready = asyncio.Event()
        self._urgent = asyncio.Event()  # a pending update is one a release is waiting for

    def __len__(self) -> int:
        return len(self._pending)

    def put(self, u: agent_pb2.ContainerStatusUpdate) -> bool:
        """Queue `u` (replacing a pending one of the same container); False if it adds nothing."""
        k = key_of(u)
        last = self._sent.get(k)
        if k not in self._pending and last is not None and same_report(last, u.status):
            return False
        self._pending.pop(k, None)  # re-insert at the end: oldest-first batches stay fair
        self._pending[k] = u
        self._ready.set()
        if is_urgent(u):
            self._urgent.set()
        return True

    @property
    def urgent(self) -> bool:
        """A pending update should not wait for the linger (see the module docstring)."""
        return self._urgent.is_set()

    def take(self) -> list[agent_pb2.ContainerStatusUpdate]:
        """Remove and return up to max_batch pending updates, oldest first."""
        keys = list(self._pending)[: self.max_batch]
        batch = [self._pending.pop(k) for k in keys]
        if not self._pending:
            self._ready.clear()
        if not any(is_urgent(u) for u in self._pending.values()):
            self._urgent.clear()
        return batch

    def mark_sent(self, batch: list[agent_pb2.ContainerStatusUpdate]) -> None:
        for u in batch:
            if u.status.state == resources_pb2.CONTAINER_STATE_REMOVED:
                self._sent.pop(key_of(u), None)  # gone for good: do not remember it forever
            else:
                self._sent[key_of(u)] = u.status

    def requeue(self, batch: list[agent_pb2.ContainerStatusUpdate]) -> None:
        """Put a failed batch back, except where a newer status is already pending."""
        for u in batch:
            k = key_of(u)
            if k not in self._pending:
                self._pending[k] = u
                if is_urgent(u):
                    self._urgent.set()
        if self._pending:
            self._ready.set()

    def forget_sent(self) -> None:
        """After a (re)connect: the next status of every container is sent even if unchanged."""
        self._sent.clear()

    def forget(self, k: Key) -> None:
        """A removed container's final status was sent: stop remembering it."""
        self._sent.pop(k, None)

    async def wait(self) -> None:
        await self._ready.wait()

    async def linger(self, seconds: float) -> None:
        """Sleep up to `seconds` for a burst to coalesce; return early once an update is urgent."""
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(seconds):
                await self._urgent.wait()


def is_urgent(u: agent_pb2.ContainerStatusUpdate) -> bool:
    return u.status.state == resources_pb2.CONTAINER_STATE_HEALTHY


Sender = Callable[[agent_pb2.UpdateStatusRequest], Awaitable[object]]


def timed_out(exc: BaseException) -> bool:
    return isinstance(exc, grpc.aio.AioRpcError) and exc.code() is grpc.StatusCode.DEADLINE_EXCEEDED


async def send_loop(
    batcher: StatusBatcher,
    send: Sender,
    *,
    linger: float = DEFAULT_LINGER,
    timeouts_kept: int = TIMEOUTS_KEPT,
    on_timeout: Callable[[int], object] | None = None,
    timeout_pause: float = TIMEOUT_PAUSE,
) -> None:
    """Send batches until cancelled. A send error puts the batch back; a timeout is then retried
    on the same session up to ``timeouts_kept`` times in a row (``on_timeout(n)`` is told the
    count), anything else is raised so the caller reconnects."""
    timeouts = 0
    while True:
        await batcher.wait()
        if len(batcher) < batcher.max_batch:
            await batcher.linger(linger)  # let a burst coalesce, unless a release waits for it
        batch = batcher.take()
        if not batch:
            continue
        try:
            await send(agent_pb2.UpdateStatusRequest(updates=batch))
        except BaseException as exc:
            batcher.requeue(batch)
            if not timed_out(exc) or timeouts >= timeouts_kept:
                raise
            raise_if_cancelled()  # grpc.aio may have eaten a cancellation in that call
            timeouts += 1
            if on_timeout is not None:
                on_timeout(timeouts)
            await asyncio.sleep(timeout_pause)
            continue
        timeouts = 0
        batcher.mark_sent(batch)
