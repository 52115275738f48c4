"""Serve container logs to every API replica, not only the one the agent's session is on.

`ccs logs` may reach any API replica; the replica that takes the call asks the agents of the
containers over a ``Logs`` stream that the agent opened to it (`nodeagent.logs_relay`; the
server cannot dial agents). So the agent keeps one such stream open to *each* replica it knows
(`nodeagent.servers`: the operator's list, the join token's, and what every heartbeat answer
names), each on its own channel with its own backoff, for the agent's whole life — independent
of the session, so a replica the session is not on (or a session that is down) still gets logs.

Why this design, and not the others considered:

- *A request record in etcd that the agent's replica watches*: the user's replica writes the
  request, the session's replica forwards it to the agent. The request would cross, but the
  log bytes must come back to the user's replica: either through etcd (a write per chunk, and
  ``-f`` streams for hours) or a replica-to-replica stream, which needs replicas to reach and
  authenticate each other (today nothing does). More moving parts for the same reach.
- *The agent serving logs on a port of its own*, dialled by the replica: needs every replica to
  reach every node (not true behind NAT, and the reason the relay exists), a server-side
  client certificate, and a new listener on every node.
- *One stream per replica* (this): the replica that takes the call already has the agent on the
  line. Cost: an idle HTTP/2 stream per (agent, replica) — a replica holds one per node either
  way, as it holds sessions. A replica added later is dialled within a heartbeat; one that
  died is dropped when its lease expires and the list no longer names it.
"""

from __future__ import annotations

import asyncio
import contextlib

import structlog

from ccs.cancellation import raise_if_cancelled
from nodeagent.runtime.types import Runtime

from .backoff import Backoff
from .dispatcher_client import DispatcherClient, describe
from .enrollment import Enrollment
from .exec_sessions import ExecServer
from .logs_relay import LogsRelay, Resolve

#: How often the set of replicas is compared with the relays running.
RESCAN = 1.0
#: Reconnect backoff of one relay: a replica that comes back serves logs within a few seconds.
RELAY_BACKOFF_CAP = 5.0

GIVEN = "given-channel"


class LogsFanout:
    def __init__(self, runtime: Runtime, resolve: Resolve, enrollment: Enrollment,
                 log: structlog.typing.FilteringBoundLogger | None = None,
                 execs: ExecServer | None = None) -> None:
        self._runtime = runtime
        self._execs = execs  # one for the agent: its limit counts sessions of every relay
        self._resolve = resolve
        self._enrollment = enrollment
        self._log = log or structlog.get_logger("ccs.agent")
        self.relays: dict[str, asyncio.Task[None]] = {}

    def targets(self) -> set[str]:
        """The node addresses of every replica known now (one key for a channel passed in)."""
        if self._enrollment.given_channel:
            return {GIVEN}
        return {self._enrollment.node_address(e.api) for e in self._enrollment.servers.entries()}

    async def run(self) -> None:
        try:
            while True:
                self.sync()
                await asyncio.sleep(RESCAN)
        finally:
            tasks = list(self.relays.values())
            self.relays.clear()
            for t in tasks:
                t.cancel()
            for t in tasks:
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await t

    def sync(self) -> None:
        """Start a relay for every new replica, stop those of replicas no longer named."""
        wanted = self.targets()
        for address in set(self.relays) - wanted:
            self.relays.pop(address).cancel()
        for address in wanted - set(self.relays):
            self.relays[address] = asyncio.create_task(self._relay_to(address), name=f"logs-{address}")

    async def _relay_to(self, address: str) -> None:
        backoff = Backoff(base=0.5, cap=RELAY_BACKOFF_CAP)
        while True:
            enrollment = self._enrollment
            channel = enrollment.open_channel(None if address == GIVEN else address)
            client = DispatcherClient(channel)
            identity = enrollment.identity
            client.credential = identity.credential if identity is not None else ""
            relay = LogsRelay(self._runtime, self._resolve, self._execs)
            try:
                await relay.run(client.logs_opener())
            except Exception as exc:
                self._log.info("logs relay closed", server=address, reason=describe(exc))
            finally:
                if not enrollment.given_channel:
                    with contextlib.suppress(Exception):
                        await channel.close()
            raise_if_cancelled()  # the stream may have eaten our cancellation: never reopen then
            await asyncio.sleep(backoff.next())

