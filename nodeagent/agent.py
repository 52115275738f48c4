"""`Agent`: one node agent, as an object (many can run in one process for hollow nodes).

Lifecycle of `run()`:
1. Identity: an explicit credential, else the one saved in the state dir, else Register with
   the join token (then saved). A saved credential refused with UNAUTHENTICATED is replaced
   by registering again when a join token is at hand.
2. Before any session: list the engine's managed containers so that running ones are known
   (and adopted later, never restarted). Engine events and a slow periodic resync (30 s)
   mark containers dirty for the executor for the agent's whole life.
3. Session loop: open the stream; the COMPLETE set replaces the book and triggers a full
   resync (which removes this cluster's orphans and reports every assignment once);
   INCREMENTAL messages must chain on the held version or the stream is dropped. While a
   session is up, heartbeats go out at the server's period, status batches flow, and the
   logs relay serves requests. Any failure: keep containers running, back off with jitter
   (0.5 s -> 2 s, so a control plane that comes back is found within about 2 s; the channel's
   own reconnect backoff is capped to match, see `dispatcher_client.CHANNEL_OPTIONS`) and reconnect;
   queued statuses are sent after reconnecting. The session returns only once its tasks have
   ended, so every loop in them checks `raise_if_cancelled()` before it retries: grpc.aio can
   eat a cancellation when it meets an RPC that just failed.
4. Router (optional, `nodeagent.router.Router`): started beside the session loop (retried
   with backoff if HAProxy cannot start, e.g. its port is taken; the agent works without it),
   fed every `SessionMessage.routing` (latest wins, applied in the background so a reload
   never stalls the stream), its counters sent in every heartbeat, stopped with the agent.
5. Network fabric (optional, `nodeagent.network.fabric.NetworkFabric`): run beside the session
   loop, fed every `SessionMessage.network_map` (latest wins, applied in the background), poked
   after the engine event stream broke (dockerd may have restarted and re-made its rules); what
   it could not put in place is the node's status message in every heartbeat.

No globals and no signal handlers: `main.py` owns the process, `stop()` ends `run()`.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import grpc
import grpc.aio
import structlog

from ccs.v1 import agent_pb2, resources_pb2
from nodeagent.runtime.types import Observed, Runtime, RuntimeFailure

from .assignments import COMPLETE, AssignmentBook, ChainBroken
from .backoff import Backoff
from .cancellation import raise_if_cancelled
from .config import Identity, load_identity, save_identity
from .dispatcher_client import CHANNEL_OPTIONS, AgentError, DispatcherClient, code_of, describe
from .executor import DEFAULT_CONCURRENCY, Executor
from .logs_relay import LogsRelay
from .reporter import DEFAULT_LINGER, StatusBatcher, send_loop
from .router import Router, RouterError, RuntimeAPIError
from .status import node_status
from .version import VERSION

if TYPE_CHECKING:  # the fabric loads pyroute2: agents without it (hollow nodes) never import it
    from .network.fabric import NetworkFabric

DEFAULT_HEARTBEAT = 5.0
DEFAULT_RESYNC = 30.0
#: Reconnect backoff cap. Low on purpose: after a control-plane restart every agent should be back
#: within about 2 s (issue 9). Half-jitter spreads a herd of agents over [0.25 s, 2 s].
RECONNECT_CAP = 2.0


def default_reconnect() -> Backoff:
    """The agent's reconnect backoff: 0.5 s doubling to `RECONNECT_CAP`, half-jittered."""
    return Backoff(base=0.5, cap=RECONNECT_CAP)


class Agent:
    def __init__(
        self,
        server_address: str,
        *,
        runtime: Runtime,
        name: str,
        credential: str | None = None,
        cluster: str | None = None,
        join_token: str | None = None,
        labels: Mapping[str, str] | None = None,
        address: str = "127.0.0.1",
        state_dir: Path | None = None,
        channel: grpc.aio.Channel | None = None,
        resync_period: float = DEFAULT_RESYNC,
        status_linger: float = DEFAULT_LINGER,
        concurrency: int = DEFAULT_CONCURRENCY,
        probe_period: float = 3.0,
        reconnect: Backoff | None = None,
        router: Router | None = None,
        network: NetworkFabric | None = None,
    ) -> None:
        if not name:
            raise ValueError("name: the node name must not be empty")
        if credential and not cluster:
            raise ValueError("cluster: required together with credential (it scopes orphan removal)")
        if not credential and not join_token and state_dir is None:
            raise ValueError("credential: pass a credential, a join_token, or a state_dir holding one")
        self.server_address = server_address
        self.runtime = runtime
        self.name = name
        self.labels = dict(labels or {})
        self.address = address
        self.state_dir = state_dir
        self._join_token = join_token
        self._identity = Identity(cluster or "", name, credential, server_address) if credential else None
        self._channel = channel
        self._owns_channel = channel is None
        self._resync_period = resync_period
        self._linger = status_linger
        self._concurrency = concurrency
        self._probe_period = probe_period
        self._reconnect = reconnect or default_reconnect()
        self.router = router
        self.network = network
        self.book = AssignmentBook()
        self.batcher = StatusBatcher()
        self.executor: Executor | None = None
        self.heartbeat_period = DEFAULT_HEARTBEAT
        self.connected = asyncio.Event()  # set while a session is up (for tests and health)
        self._node_status = resources_pb2.NodeStatus()
        self._main: asyncio.Task[None] | None = None
        self._stopping = False
        self.log = structlog.get_logger("ccs.agent").bind(node=name)

    @property
    def cluster(self) -> str:
        return self._identity.cluster if self._identity else ""

    def service_dns(self, source: str) -> Sequence[str]:
        """The Compose `dns` servers of the local container at `source` (the resolver's upstreams)."""
        return self.executor.service_dns(source) if self.executor is not None else ()

    def endpoints(self) -> list[tuple[int, str, tuple[tuple[str, str], ...]]]:
        """The running local containers on several networks (the fabric routes inside them)."""
        return self.executor.endpoints() if self.executor is not None else []

    def networks_of(self, source: str) -> tuple[str, tuple[str, ...]] | None:
        """The application and Compose networks of the local container at `source` (the
        resolver answers the names of all of them)."""
        return self.executor.networks_of(source) if self.executor is not None else None

    # ------------------------------------------------------------------ public

    async def run(self) -> None:
        """Run until `stop()` (returns) or a fatal error (raises AgentError). Containers stay."""
        self._main = asyncio.create_task(self._run(), name=f"agent-{self.name}")
        try:
            await self._main
        except asyncio.CancelledError:
            if not self._stopping:
                raise

    async def stop(self) -> None:
        self._stopping = True
        if self._main is not None and not self._main.done():
            self._main.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._main

    # ------------------------------------------------------------------ main loop

    async def _run(self) -> None:
        channel = self._channel or grpc.aio.insecure_channel(self.server_address, options=CHANNEL_OPTIONS)
        client = DispatcherClient(channel)
        background: list[asyncio.Task[None]] = []
        try:
            self._node_status = await self._host_status()
            await self._ensure_identity(client, fresh=False)
            assert self._identity is not None
            self.executor = Executor(
                self.runtime, self.book, self.batcher.put, cluster=self._identity.cluster,
                node=self.name, address=self.address, concurrency=self._concurrency,
                probe_period=self._probe_period, log=self.log,
                unrouted_for=self.router.unrouted_for if self.router is not None else None,
                on_endpoints=self.network.poke if self.network is not None else None,
            )
            self.executor.observe_all(await self._list_managed())
            background = [
                asyncio.create_task(self._watch_events(), name=f"events-{self.name}"),
                asyncio.create_task(self._periodic_resync(), name=f"resync-{self.name}"),
            ]
            if self.router is not None:
                background.append(asyncio.create_task(self._start_router(self.router), name="router"))
            if self.network is not None:
                fabric = self.network.run(cluster=self._identity.cluster, node=self._identity.node)
                background.append(asyncio.create_task(fabric, name=f"network-{self.name}"))
            while True:
                try:
                    await self._session(client)
                    reason = "session stream ended"
                except AgentError:
                    raise
                except ChainBroken as exc:
                    reason = str(exc)
                except Exception as exc:  # grpc errors, engine errors: reconnect
                    if code_of(exc) is grpc.StatusCode.UNAUTHENTICATED:
                        await self._ensure_identity(client, fresh=True)
                        continue
                    reason = describe(exc)
                self.connected.clear()
                delay = self._reconnect.next()
                self.log.warning("disconnected", reason=reason, retry_in=round(delay, 2))
                await asyncio.sleep(delay)
        finally:
            self.connected.clear()
            for t in background:
                t.cancel()
            for t in background:
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await t
            if self.executor is not None:
                await self.executor.close()
            if self.router is not None:
                await self.router.stop()
            if self.network is not None:
                await self.network.close()
            if self._owns_channel:
                await channel.close()

    async def _ensure_identity(self, client: DispatcherClient, *, fresh: bool) -> None:
        """Load or obtain the node credential; `fresh` means the current one was refused."""
        if fresh:
            if not self._join_token:
                raise AgentError(
                    "the node credential was refused (UNAUTHENTICATED) and no join token was given"
                )
            self.log.warning("credential refused; registering again with the join token")
            self._identity = None
        if self._identity is None and self.state_dir is not None and not fresh:
            self._identity = load_identity(self.state_dir)
        if self._identity is None:
            if not self._join_token:
                raise AgentError(f"no saved credential in {self.state_dir} and no join token given")
            self._identity = await self._register(client, self._join_token)
        client.credential = self._identity.credential

    async def _register(self, client: DispatcherClient, join_token: str) -> Identity:
        while True:
            try:
                response = await client.register(join_token, self.name, self.labels, self._node_status)
                break
            except AgentError:
                raise
            except Exception as exc:
                delay = self._reconnect.next()
                self.log.warning("register failed", error=describe(exc), retry_in=round(delay, 2))
                await asyncio.sleep(delay)
        identity = Identity(
            response.cluster, response.node.meta.name or self.name, response.credential, self.server_address
        )
        if self.state_dir is not None:
            save_identity(self.state_dir, identity)
        self.log.info("registered", cluster=identity.cluster, node_id=response.node.meta.id)
        return identity

    async def _session(self, client: DispatcherClient) -> None:
        assert self.executor is not None
        try:
            await self._session_body(client)
        except BaseExceptionGroup as group:  # TaskGroup wraps errors; the first one is the cause
            raise group.exceptions[0] from None

    async def _session_body(self, client: DispatcherClient) -> None:
        assert self.executor is not None
        stream = client.session(VERSION)
        try:
            await self._consume(stream, client)
        finally:
            cancel = getattr(stream, "cancel", None)  # a grpc call: do not leave it open
            if cancel is not None:
                cancel()

    async def _consume(
        self, stream: AsyncIterator[agent_pb2.SessionMessage], client: DispatcherClient
    ) -> None:
        assert self.executor is not None
        async with asyncio.TaskGroup() as tg:
            started = False
            async for msg in stream:
                if msg.heartbeat_period_ms > 0:
                    self.heartbeat_period = msg.heartbeat_period_ms / 1000.0
                changed = self.book.apply(msg)  # ChainBroken: drop the stream, reconnect
                if self.router is not None and msg.HasField("routing"):
                    self.router.submit(msg.routing)
                if self.network is not None and msg.HasField("network_map"):
                    self.network.submit(msg.network_map)
                if msg.type == COMPLETE:
                    self.log.info("complete set", version=msg.version, containers=len(self.book.desired))
                    self.batcher.forget_sent()  # report every assignment once after (re)connect
                    await self.resync()
                else:
                    for cid in changed:
                        self.executor.enqueue(cid)
                if not started:
                    started = True
                    self._reconnect.reset()
                    self.connected.set()
                    tg.create_task(self._heartbeats(client))
                    tg.create_task(send_loop(self.batcher, client.update_status, linger=self._linger))
                    tg.create_task(self._logs(client))
            raise ConnectionError("session stream closed by the server")

    # ------------------------------------------------------------------ session tasks

    async def _heartbeats(self, client: DispatcherClient) -> None:
        while True:
            raise_if_cancelled()
            deadline = max(self.heartbeat_period, 5.0)
            self._node_status.message = self.network.problem if self.network is not None else ""
            period = await client.heartbeat(
                self._node_status, deadline_seconds=deadline, router_stats=await self._router_stats()
            )
            if period > 0:
                self.heartbeat_period = period / 1000.0
            await asyncio.sleep(self.heartbeat_period)

    async def _router_stats(self) -> resources_pb2.RouterStats | None:
        """The router's counters, or None (router off, not up yet, or not answering)."""
        if self.router is None or self.router.pid is None:
            return None
        try:
            return await asyncio.wait_for(self.router.collect(node=self.name), 2.0)
        except (RouterError, RuntimeAPIError, OSError, TimeoutError) as exc:
            self.log.warning("router stats unavailable", error=str(exc))
            return None

    async def _start_router(self, router: Router) -> None:
        """Start HAProxy, retrying with backoff: containers are managed with or without it."""
        backoff = Backoff(base=1.0, cap=30.0)
        while True:
            try:
                await router.start()
                return
            except (RouterError, OSError) as exc:
                delay = backoff.next()
                self.log.error("router did not start", error=str(exc), retry_in=round(delay, 2))
                await asyncio.sleep(delay)

    async def _logs(self, client: DispatcherClient) -> None:
        """Keep the logs relay open; its failures never take the session down."""
        assert self.executor is not None
        executor = self.executor
        backoff = Backoff(base=1.0, cap=30.0)
        while True:
            relay = LogsRelay(self.runtime, executor.docker_ids.get)
            try:
                await relay.run(client.logs_opener())
            except Exception as exc:
                self.log.info("logs relay closed", reason=describe(exc))
            raise_if_cancelled()  # the stream may have eaten our cancellation: never reopen then
            await asyncio.sleep(backoff.next())

    # ------------------------------------------------------------------ engine side

    async def resync(self) -> None:
        """List the engine, re-plan every assigned container, and orphans once synced."""
        assert self.executor is not None
        present = self.executor.observe_all(await self._list_managed())
        assigned = self.book.ids()
        for cid in assigned:
            self.executor.enqueue(cid)
        if self.book.synced:
            for cid in present - assigned:
                self.executor.enqueue(cid)

    async def _list_managed(self) -> list[Observed]:
        return await self.runtime.list_managed()

    async def _periodic_resync(self) -> None:
        while True:
            await asyncio.sleep(self._resync_period)
            try:
                await self.resync()
            except RuntimeFailure as exc:
                self.log.warning("resync failed", error=exc.reason)

    async def _watch_events(self) -> None:
        """Mark containers dirty on engine events; after a broken event stream, resync."""
        assert self.executor is not None
        backoff = Backoff(base=0.5, cap=10.0)
        while True:
            try:
                async for event in self.runtime.events():
                    backoff.reset()
                    if event.cluster != self.cluster or not event.container_id:
                        continue
                    if event.container_id in self.book.ids():
                        self.executor.enqueue(event.container_id)
            except RuntimeFailure as exc:
                self.log.warning("engine event stream broken", error=exc.reason)
            await asyncio.sleep(backoff.next())
            with contextlib.suppress(RuntimeFailure):
                await self.resync()  # events may have been missed
                if self.network is not None:
                    self.network.poke()  # the engine answers again: it may have re-made its rules

    async def _host_status(self) -> resources_pb2.NodeStatus:
        while True:
            try:
                info = await self.runtime.info()
                break
            except RuntimeFailure as exc:
                delay = self._reconnect.next()
                self.log.warning("engine unavailable", error=exc.reason, retry_in=round(delay, 2))
                await asyncio.sleep(delay)
        self._reconnect.reset()
        return node_status(info, self.address, VERSION)
