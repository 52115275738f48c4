"""Relay container logs from agents to API clients.

An agent keeps one ``Logs`` stream open to *every* API replica it knows, not only the one its
session is on (``nodeagent.logs_fanout`` says why that design), so whichever replica a user's
``ContainerService.Logs`` call reaches has the agents on the line: it finds the agents that run
the containers, sends each a ``LogRequest`` with a fresh request id, and merges the chunks that
come back. A replica an agent cannot reach answers FAILED_PRECONDITION naming the node.
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field

from ccs.v1 import agent_pb2


class Inbox(asyncio.Queue[agent_pb2.LogChunk]):
    """One request's chunks from the agent. With a ``limit`` (exec sessions) it never holds
    more: when its reader falls that far behind, the request is ended (:func:`deliver`) and
    ``overflowed`` says why. A logs request has none: its chunks are still buffered here for a
    slow reader (a bound would end a slow reader's ``ccs logs`` of a large log: a new refusal,
    left for a change of its own)."""

    def __init__(self, limit: int = 0) -> None:
        super().__init__()  # unbounded as a queue: the place for the end is always there
        self.limit = limit
        self.overflowed = ""


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
    """Give ``chunk`` to its request. A request whose reader holds ``limit`` chunks unread is
    ended instead: forgotten here, cancelled on the agent (which kills an exec's command), and
    its reader gets what was buffered, then the end with the reason. One slow client thus
    costs bounded memory and never stalls the node's other requests (one stream carries them)."""
    q = chan.pending.get(chunk.request_id)
    if q is None:
        return
    if not q.limit or q.qsize() < q.limit:
        q.put_nowait(chunk)
        return
    chan.pending.pop(chunk.request_id, None)
    chan.input_sent.pop(chunk.request_id, None)
    q.overflowed = (f"the client did not read the output: {q.limit} pieces (up to {q.limit * 64} KiB) waited "
                    "unread, so the session was ended")
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
        q = Inbox()
        chan.pending[rid] = q
        chan.outbox.put_nowait(agent_pb2.LogRequest(
            request_id=rid, container_id=container_id, follow=follow, tail=tail, since=since))
        try:
            while True:
                chunk = await q.get()
                if chunk.data:
                    yield chunk.data
                if chunk.error:
                    raise AgentNotConnected(chunk.error)
                if chunk.eof:
                    return
        finally:
            chan.pending.pop(rid, None)
            if follow:
                chan.outbox.put_nowait(agent_pb2.LogRequest(request_id=rid, cancel=True))
