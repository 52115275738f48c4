"""Relay container logs from agents to API clients.

An agent keeps one ``Logs`` stream open to *every* API replica it knows, not only the one its
session is on (``nodeagent.logs_fanout`` says why that design), so whichever replica a user's
``ContainerService.Logs`` call reaches has the agents on the line: it finds the agents that run
the containers, sends each a ``LogRequest`` with a fresh request id, and merges the chunks that
come back. A replica an agent cannot reach answers FAILED_PRECONDITION naming the node.

Every request's chunks wait here for their reader in a bounded :class:`Inbox`: the node's one
stream carries all its requests, so it cannot be held up for one slow client, and buffering
without a bound would let a client that does not read grow the server's memory without end.
A logs request holds at most :data:`LOGS_BACKLOG_BYTES`; a reader that falls further behind has
its request ended with :class:`ClientTooSlow` (exit 5 in the CLI), after the lines already
buffered. Ended, not thinned out with a "lines dropped" marker: logs are read as evidence, and
a clear end says exactly where the reader stopped (``--since`` goes on from there), where a
gap in the middle of a stream is easy to miss.
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field

from ccs.v1 import agent_pb2

#: Bytes of one logs request's lines that may wait for a reader (each chunk also counts
#: ``CHUNK_OVERHEAD``, so a log of many short lines is bounded too): about a minute of a busy
#: service's output, and room for a reader that is briefly slower than the node.
LOGS_BACKLOG_BYTES = 8 * 1024 * 1024
#: What a waiting chunk costs beyond its data (the message object and the queue's slot).
CHUNK_OVERHEAD = 256


class ClientTooSlow(Exception):
    """The client left a request's chunks unread past its inbox's bound: the request was ended."""


class Inbox(asyncio.Queue[agent_pb2.LogChunk]):
    """One request's chunks from the agent, bounded by ``limit`` chunks (exec sessions) or
    ``max_bytes`` (logs: their chunks are lines of any length). When the reader falls that far
    behind, the request is ended (:func:`deliver`) and ``overflowed`` says why: ``too_slow``
    with the bound filled in."""

    def __init__(self, limit: int = 0, *, max_bytes: int = 0, too_slow: str = "") -> None:
        super().__init__()  # unbounded as a queue: the place for the end is always there
        self.limit, self.max_bytes, self.too_slow = limit, max_bytes, too_slow
        self.held = 0  # bytes waiting, as ``max_bytes`` counts them
        self.overflowed = ""

    def fits(self, chunk: agent_pb2.LogChunk) -> bool:
        """Whether ``chunk`` may wait too (one chunk always may, whatever its size)."""
        if self.limit and self.qsize() >= self.limit:
            return False
        return not self.max_bytes or self.qsize() == 0 or self.held + _weight(chunk) <= self.max_bytes

    def put_nowait(self, item: agent_pb2.LogChunk) -> None:
        super().put_nowait(item)
        self.held += _weight(item)

    def get_nowait(self) -> agent_pb2.LogChunk:  # asyncio.Queue.get ends here too
        item = super().get_nowait()
        self.held -= _weight(item)
        return item


def _weight(chunk: agent_pb2.LogChunk) -> int:
    return len(chunk.data) + CHUNK_OVERHEAD


@dataclass(eq=False)
class Channel:
    outbox: asyncio.Queue[agent_pb2.LogRequest | None] = field(default_factory=asyncio.Queue)
    pending: dict[str, Inbox] = field(default_factory=dict)
    # An exec session's release of stdin credit, called once its input has gone down the stream
    # (controlplane.dispatcher.exec_relay: input waits for it, so the outbox stays bounded).
    input_sent: dict[str, Callable[[], None]] = field(default_factory=dict)
    # The agent's hello said it serves `ccs exec` (controlplane.dispatcher.exec_relay).
    serves_exec: bool = False


def deliver(chan: Channel, chunk: agent_pb2.LogChunk) -> None:
    """Give ``chunk`` to its request. A request whose reader left its inbox full is ended
    instead: forgotten here, cancelled on the agent (which kills an exec's command), and its
    reader gets what was buffered, then the end with the reason. One slow client thus
    costs bounded memory and never stalls the node's other requests (one stream carries them)."""
    q = chan.pending.get(chunk.request_id)
    if q is None:
        return
    if q.fits(chunk):
        q.put_nowait(chunk)
        return
    chan.pending.pop(chunk.request_id, None)
    chan.input_sent.pop(chunk.request_id, None)
    q.overflowed = q.too_slow or "the client did not read what was sent, so the request was ended"
    q.put_nowait(agent_pb2.LogChunk(request_id=chunk.request_id, eof=True, error=q.overflowed))
    chan.outbox.put_nowait(agent_pb2.LogRequest(request_id=chunk.request_id, cancel=True))


class AgentNotConnected(Exception):
    pass


class LogBroker:
    """The agents' open log streams, by (cluster, node). A node may hold several: an agent that
    reaches this replica under two addresses (the one it was given and the one the replica
    advertises) keeps a relay on each, and a reconnecting relay opens its new stream before the
    old one is known dead. Requests go to the newest; each stream leaves the list when it ends.
    (Replacing the older stream instead made two relays of one agent end each other in turn.)"""

    def __init__(self) -> None:
        self._channels: dict[tuple[str, str], list[Channel]] = {}

    async def agent_channel(
        self, cluster: str, node: str, chunks: AsyncIterator[agent_pb2.LogChunk]
    ) -> AsyncIterator[agent_pb2.LogRequest]:
        chan = Channel()
        self._channels.setdefault((cluster, node), []).append(chan)

        async def pump() -> None:
            async for chunk in chunks:
                if not chunk.request_id and chunk.serves_exec:
                    chan.serves_exec = True
                deliver(chan, chunk)
            chan.outbox.put_nowait(None)

        reader = asyncio.create_task(pump())
        try:
            while True:
                req = await chan.outbox.get()
                if req is None:
                    return
                yield req
                if req.HasField("exec_input") and (sent := chan.input_sent.get(req.request_id)) is not None:
                    sent()  # it has left: the session may send more
        finally:
            reader.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await reader
            open_now = self._channels.get((cluster, node), [])
            if chan in open_now:
                open_now.remove(chan)
            if not open_now:
                self._channels.pop((cluster, node), None)
            for q in chan.pending.values():
                q.put_nowait(agent_pb2.LogChunk(eof=True, error=f"node {node} disconnected"))

    def channel(self, cluster: str, node: str) -> Channel:
        """The node's newest open stream; AgentNotConnected when it has none here."""
        open_now = self._channels.get((cluster, node))
        if not open_now:
            raise AgentNotConnected(f"the agent of node {node!r} is not connected to this server")
        return open_now[-1]

    async def stream(
        self, cluster: str, node: str, container_id: str, *, follow: bool, tail: int, since: float
    ) -> AsyncIterator[bytes]:
        chan = self.channel(cluster, node)
        rid = uuid.uuid4().hex
        q = Inbox(max_bytes=LOGS_BACKLOG_BYTES, too_slow=(
            f"the client did not read the logs: {LOGS_BACKLOG_BYTES // (1024 * 1024)} MiB waited unread, so the "
            "stream was ended (go on from the last line read with --since)"))
        chan.pending[rid] = q
        chan.outbox.put_nowait(agent_pb2.LogRequest(
            request_id=rid, container_id=container_id, follow=follow, tail=tail, since=since))
        try:
            while True:
                chunk = await q.get()
                if chunk.data:
                    yield chunk.data
                if chunk.eof and q.overflowed:
                    raise ClientTooSlow(q.overflowed)
                if chunk.error:
                    raise AgentNotConnected(chunk.error)
                if chunk.eof:
                    return
        finally:
            chan.pending.pop(rid, None)
            if follow:
                chan.outbox.put_nowait(agent_pb2.LogRequest(request_id=rid, cancel=True))
