"""Relay a `ccs exec` session between an API client and the agent of the container's node.

It uses the channel `ccs logs` uses (:mod:`.logs_relay`): the agent keeps one open to every
replica, so the replica that takes the client's call has the agent on the line. The session
gets a fresh request id on that channel; the start and every input go down as ``LogRequest``s
with that id, output comes back as ``LogChunk``s with it, and leaving (the client went away,
the command ended, an error) sends ``cancel``, which ends the session on the agent and kills
its command if it still runs. An agent whose hello did not say it serves exec (one from before
exec) is refused here rather than sent a request it would misread.

Both directions are bounded on the server, whatever the client and the agent do. Input: at
most :data:`INPUT_IN_FLIGHT` pieces of one session wait in the channel's outbox; ``send`` waits
until an earlier one has gone down the stream (gRPC's flow control towards a slow agent reaches
back to the client, whose requests are then not read). Output: at most :data:`OUTPUT_BACKLOG`
chunks wait for a client that does not read them; one more ends the session with that reason
(:func:`.logs_relay.deliver`), since the node's one stream cannot be held up for one client.
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass

from ccs.v1 import agent_pb2

from .logs_relay import AgentNotConnected, ClientTooSlow, Inbox, LogBroker

#: Pieces of one session's input (each at most 64 KiB, container_exec.MAX_STDIN_CHUNK) in the outbox.
INPUT_IN_FLIGHT = 16
#: Output chunks (each at most 64 KiB, nodeagent.exec_sessions.MAX_CHUNK) waiting for the client.
OUTPUT_BACKLOG = 64


class AgentTooOld(Exception):
    """The node's agent does not serve exec sessions."""


@dataclass(frozen=True)
class ExecFailed(Exception):
    """The agent could not start (or keep) the session: `failure` says why, as a code."""

    failure: int
    message: str

    def __str__(self) -> str:
        return self.message


class ExecLine:
    """One session on a node's channel: `send` input, iterate output chunks until the end."""

    def __init__(self, broker: LogBroker, cluster: str, node: str, start: agent_pb2.AgentExecStart) -> None:
        chan = broker.channel(cluster, node)
        if not chan.serves_exec:
            raise AgentTooOld(f"the agent of node {node!r} is too old to run exec sessions; upgrade it")
        self._chan, self._node = chan, node
        self.rid = uuid.uuid4().hex
        self._queue = Inbox(OUTPUT_BACKLOG, too_slow=(
            f"the client did not read the output: {OUTPUT_BACKLOG} pieces (up to {OUTPUT_BACKLOG * 64} KiB) "
            "waited unread, so the session was ended"))
        self._credit = asyncio.Semaphore(INPUT_IN_FLIGHT)
        chan.pending[self.rid] = self._queue
        chan.input_sent[self.rid] = self._credit.release
        chan.outbox.put_nowait(agent_pb2.LogRequest(request_id=self.rid, exec=start))
        self._open = True

    async def send(self, item: agent_pb2.AgentExecInput) -> None:
        """Queue input for the agent; waits while :data:`INPUT_IN_FLIGHT` pieces have not gone yet."""
        await self._credit.acquire()
        if self._open:
            self._chan.outbox.put_nowait(agent_pb2.LogRequest(request_id=self.rid, exec_input=item))

    async def chunks(self) -> AsyncIterator[agent_pb2.LogChunk]:
        """Output chunks, the last one with `exited`; raises ExecFailed or AgentNotConnected."""
        while True:
            chunk = await self._queue.get()
            if chunk.data or chunk.exited:
                yield chunk
            if chunk.exited:
                return
            if chunk.eof:
                if self._queue.overflowed:
                    raise ClientTooSlow(self._queue.overflowed)
                if chunk.exec_failure:
                    raise ExecFailed(chunk.exec_failure, chunk.error)
                raise AgentNotConnected(chunk.error or f"the agent of node {self._node!r} ended the session")

    def close(self) -> None:
        """Forget the session here and end it on the agent (a no-op for one already ended)."""
        if not self._open:
            return
        self._open = False
        self._chan.pending.pop(self.rid, None)
        self._chan.input_sent.pop(self.rid, None)
        with contextlib.suppress(Exception):
            self._chan.outbox.put_nowait(agent_pb2.LogRequest(request_id=self.rid, cancel=True))
