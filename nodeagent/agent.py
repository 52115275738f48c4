"""`Agent`: one node agent, as an object (many can run in one process for hollow nodes).

Lifecycle of `run()`:
1. Identity: a node certificate (TLS, the default: `node_tls` checks the server against the join
   token's CA fingerprint, sends a CSR, then talks mutual TLS and renews in the background) or,
   with `insecure`/a given channel, a bearer credential; an explicit credential, else the one
   saved in the state dir, else Register with the join token (then saved). An identity refused
   with UNAUTHENTICATED, or a certificate that expired, is replaced by registering again when a
   join token is at hand; a certificate refused as revoked stops the agent (AgentError).
2. Before any session: list the engine's managed containers so that running ones are known
   (and adopted later, never restarted). Engine events and a slow periodic resync (30 s)
   mark containers dirty for the executor for the agent's whole life.
3. Session loop: open the stream; the COMPLETE set replaces the book and triggers a full
   resync (which removes this cluster's orphans and reports every assignment once);
   INCREMENTAL messages must chain on the held version or the stream is dropped. While a
   session is up, heartbeats go out at the server's period (their answers name the API
   replicas alive now; they go on through a reconnect, on a stream that outlives the session,
   unless they are what failed: `Agent._heartbeats`) and status batches flow (a heartbeat that
   timed out is sent again on the same session for up to three periods: `heartbeat_patience`;
   a status batch that timed out, up to three times in a row: `reporter.send_loop`). Any
   failure: keep containers running, move to
   the next API replica (`nodeagent.servers`), back off with jitter
   (0.5 s -> 2 s, so a control plane that comes back is found within about 2 s; the channel's
   own reconnect backoff is capped to match, see `dispatcher_client.CHANNEL_OPTIONS`) and reconnect;
   queued statuses are sent after reconnecting. The session returns only once its tasks have
   ended, so every loop in them checks `raise_if_cancelled()` before it retries: grpc.aio can
   eat a cancellation when it meets an RPC that just failed.
4. Router (optional, `nodeagent.router.Router`): started beside the session loop (retried
   with backoff if HAProxy cannot start, e.g. its port is taken; the agent works without it),
   fed every `SessionMessage.routing` with the route certificates sent beside it (latest wins,
   applied in the background so a reload never stalls the stream), its counters sent in every
   heartbeat, stopped with the agent.
5. Network fabric (optional, `nodeagent.network.fabric.NetworkFabric`): run beside the session
   loop, fed every `SessionMessage.network_map` as a whole map (`network.map_book` applies deltas on the
   held version; one that does not chain ends the session), latest wins, applied in the background; poked
   after the engine event stream broke (dockerd may have restarted and re-made its rules); what
   it could not put in place is the node's status message in every heartbeat.

6. Logs (`nodeagent.logs_fanout`): one relay stream to every known API replica, for the
   agent's whole life, so `ccs logs` works through any replica.

No globals and no signal handlers: `main.py` owns the process, `stop()` ends `run()`.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Awaitable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import grpc
import grpc.aio
import structlog

from ccs.cancellation import raise_if_cancelled
from ccs.errors import REASON_CERT_REVOKED, reason_of
from ccs.v1 import agent_pb2, resources_pb2
from nodeagent.runtime.types import Runtime, RuntimeFailure

from . import heartbeat_patience, node_tls
from .assignments import COMPLETE, AssignmentBook, ChainBroken
from .backoff import Backoff
from .config import Identity
from .dispatcher_client import AgentError, DispatcherClient, code_of, describe
from .engine_sync import EngineSync
from .enrollment import Enrollment
from .exec_sessions import ExecServer
from .executor import DEFAULT_CONCURRENCY, Executor
from .fence import is_fenced
from .image_collection import ImageCollection
from .logs_fanout import LogsFanout
from .metrics import AgentMetrics
from .network.map_book import MapBook
from .reporter import DEFAULT_LINGER, StatusBatcher, send_loop
from .router import Router, delivered
from .servers import ServerList
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


class CertificateRenewed(Exception):
    """The session moves to the channel of the renewed certificate (reconnect at once)."""


PART_NOTE = "ccs session part: "


async def session_part(name: str, work: Awaitable[None]) -> None:
    """Run one task of a session, with its name noted on the error that ends it, so that the
    "disconnected" log says which part ended the session (the heartbeats, the status reports or
    the session stream itself): under load (issue 15) the same code, DEADLINE_EXCEEDED or
    CANCELLED, came from different calls, and only the part tells them apart."""
    try:
        await work
    except Exception as exc:
        exc.add_note(PART_NOTE + name)
        raise


def part_of(exc: BaseException) -> str:
    """The session part noted by :func:`session_part`; an error without one came from the
    session stream (or the agent's own handling of a message)."""
    for note in getattr(exc, "__notes__", ()):
        if isinstance(note, str) and note.startswith(PART_NOTE):
            return note.removeprefix(PART_NOTE)
    return "session stream"


def debug_of(exc: BaseException) -> str:
    """gRPC's own account of a failed call (whether the status came from the server, which
    transport event ended it), cut to a log line's size; empty for other errors."""
    if not isinstance(exc, grpc.aio.AioRpcError):
        return ""
    try:
        text = exc.debug_error_string() or ""
    except Exception:  # an AioRpcError made by hand (AnswerTimeout) may have none
        return ""
    return text[:300]


class Agent:
    def __init__(
        self,
        server_address: str | Sequence[str],
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
        insecure: bool = False,
        metrics: AgentMetrics | None = None,
    ) -> None:
        if not name:
            raise ValueError("name: the node name must not be empty")
        if credential and not cluster:
            raise ValueError("cluster: required together with credential (it scopes orphan removal)")
        if credential and channel is None and not insecure:
            raise ValueError("credential: a bearer credential is for insecure=True (or a given channel); "
                             "with TLS the node is known by its certificate")
        if not credential and not join_token and state_dir is None:
            raise ValueError("credential: pass a credential, a join_token, or a state_dir holding one")
        given = server_address.split(",") if isinstance(server_address, str) else list(server_address)
        self.servers = ServerList([a.strip() for a in given if a.strip()], state_dir)
        self.server_address = self.servers.api()
        self.runtime = runtime
        self.metrics = metrics
        self.name = name
        self.labels = dict(labels or {})
        self.address = address
        self.state_dir = state_dir
        self._owns_channel = channel is None
        self._resync_period = resync_period
        self._linger = status_linger
        self._concurrency = concurrency
        self._probe_period = probe_period
        self._reconnect = reconnect or default_reconnect()
        # TLS unless told otherwise; a given channel (the test seam) carries bearer credentials.
        self.enrollment = Enrollment(
            self.servers, name=name, labels=self.labels, state_dir=state_dir, join_token=join_token,
            identity=Identity(cluster or "", name, credential, self.server_address) if credential else None,
            channel=channel, tls=channel is None and not insecure, reconnect=self._reconnect,
            log=structlog.get_logger("ccs.agent").bind(node=name),
        )
        self.router = router
        self.network = network
        self.network_maps = MapBook()  # the map the fabric was given, kept to apply deltas on
        self.book = AssignmentBook()
        self.batcher = StatusBatcher()
        self.executor: Executor | None = None
        self.engine_sync: EngineSync | None = None  # made with the executor
        self.heartbeat_period = DEFAULT_HEARTBEAT
        self.image_collection = ImageCollection(self._collect_images)  # nodeagent.images
        self.connected = asyncio.Event()  # set while a session is up (for tests and health)
        # Heartbeats outlive sessions (see _heartbeats): set when a session is up and the
        # heartbeats have not failed since; the failure that ends a session is handed over here.
        self._beats_wanted = asyncio.Event()
        self._beats_failed = asyncio.Event()
        self._beats_failure: Exception | None = None
        self._session_ended_at = time.monotonic()  # when the last session ended (see _heartbeats)
        self._stream_before_session: object | None = None  # the heartbeat stream a session found
        self._main: asyncio.Task[None] | None = None
        self._stopping = False
        self.log = structlog.get_logger("ccs.agent").bind(node=name)

    @property
    def cluster(self) -> str:
        identity = self.enrollment.identity
        return identity.cluster if identity else ""

    @property
    def _node_status(self) -> resources_pb2.NodeStatus:
        return self.enrollment.node_status

    def service_dns(self, source: str) -> Sequence[str]:
        """The Compose `dns` servers of the local container at `source` (the resolver's upstreams)."""
        return self.executor.addresses.service_dns(source) if self.executor is not None else ()

    def endpoints(self) -> list[tuple[int, str, tuple[tuple[str, str], ...]]]:
        """The running local containers on several networks (the fabric routes inside them)."""
        return self.executor.addresses.endpoints() if self.executor is not None else []

    def networks_of(self, source: str) -> tuple[str, tuple[str, ...]] | None:
        """The application and Compose networks of the local container at `source` (the
        resolver answers the names of all of them)."""
        return self.executor.addresses.networks_of(source) if self.executor is not None else None

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
        client: DispatcherClient | None = None
        background: list[asyncio.Task[None]] = []
        try:
            enrollment = self.enrollment
            enrollment.node_status = await self._host_status()
            await enrollment.ensure(fresh=False)
            identity = enrollment.identity
            assert identity is not None
            client = DispatcherClient(enrollment.open_channel())
            client.credential = identity.credential
            self.executor = Executor(
                self.runtime, self.book, self.batcher.put, cluster=identity.cluster,
                node=self.name, address=self.address, concurrency=self._concurrency,
                probe_period=self._probe_period, log=self.log,
                unrouted_for=self.router.unrouted_for if self.router is not None else None,
                on_endpoints=self.network.poke if self.network is not None else None,
                on_removed=self.network.sweep if self.network is not None else None,
            )
            self.executor.observe_all(await self.runtime.list_managed())
            self.engine_sync = EngineSync(self.runtime, self.executor, self.book, identity.cluster,
                                          period=self._resync_period, log=self.log,
                                          engine_back=self.network.poke if self.network is not None else None)
            background = [
                asyncio.create_task(self.engine_sync.watch_events(), name=f"events-{self.name}"),
                asyncio.create_task(self.engine_sync.periodic(), name=f"resync-{self.name}"),
            ]
            if self.router is not None:
                background.append(asyncio.create_task(self.router.start_until_up(), name="router"))
            if self.network is not None:
                from .network.sweep import BridgeSweeper  # beside the fabric, which loads pyroute2

                self.network.after_apply = BridgeSweeper(self.runtime, identity.cluster, self.book.subnets, self.log)
                fabric = self.network.run(cluster=identity.cluster, node=identity.node)
                background.append(asyncio.create_task(fabric, name=f"network-{self.name}"))
            if enrollment.tls:
                background.append(asyncio.create_task(enrollment.renewals(client), name=f"renew-{self.name}"))
            # Logs go to every API replica, not only the session's (nodeagent.logs_fanout).
            # `ccs exec` sessions ride the same relays (nodeagent.exec_sessions).
            execs = ExecServer(self.runtime, self.executor.docker_ids.get)
            fanout = LogsFanout(self.runtime, self.executor.docker_ids.get, enrollment, self.log, execs)
            background.append(asyncio.create_task(fanout.run(), name=f"logs-{self.name}"))
            beats = asyncio.create_task(self._heartbeats(client), name=f"heartbeats-{self.name}")
            beats.add_done_callback(self._heartbeats_ended)
            background.append(beats)
            while True:
                part, debug = "session stream", ""
                try:
                    await self._session(client)
                    reason = "session stream ended"
                except (AgentError, CertificateRenewed) as exc:
                    if isinstance(exc, AgentError):
                        raise
                    continue
                except ChainBroken as exc:
                    reason = str(exc)
                except Exception as exc:  # grpc errors, engine errors: reconnect
                    refused = code_of(exc) is grpc.StatusCode.UNAUTHENTICATED
                    if refused and reason_of(exc) == REASON_CERT_REVOKED:
                        raise AgentError(
                            f"{describe(exc)}: this node was revoked (ccs node revoke / node rm). To join "
                            f"again, remove {self.state_dir}/identity.json and start the agent with a join "
                            "token") from None
                    current = enrollment.identity
                    expired = current is not None and node_tls.expired(current)
                    if refused or expired:
                        why = describe(exc) if refused else "the node certificate expired"
                        await enrollment.reregister(client, why)
                        continue
                    reason = describe(exc)
                    part = part_of(exc)
                    debug = debug_of(exc)
                self.connected.clear()
                self._session_ended_at = time.monotonic()
                delay = self._reconnect.next()
                self.log.warning("disconnected", server=self.servers.api(), reason=reason, part=part,
                                 retry_in=round(delay, 2), **({"debug": debug} if debug else {}))
                await enrollment.fail_over(client, reason)
                await asyncio.sleep(delay)
        finally:
            self.connected.clear()
            for t in background:
                t.cancel()
            for t in background:
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await t
            await self.image_collection.close()
            if self.executor is not None:
                await self.executor.close()
            if self.router is not None:
                await self.router.stop()
            if self.network is not None:
                await self.network.close()
            if client is not None and self._owns_channel:
                await client.channel.close()
            await self.enrollment.close_retired()

    async def _session(self, client: DispatcherClient) -> None:
        assert self.executor is not None
        try:
            await self._session_body(client)
        except BaseExceptionGroup as group:  # TaskGroup wraps errors; the first one is the cause
            raise group.exceptions[0] from None

    async def _session_body(self, client: DispatcherClient) -> None:
        assert self.executor is not None
        self.enrollment.renewed.clear()  # this session opens on the current certificate's channel
        await self.enrollment.close_retired()
        # The map held from the last session: the server may answer with what changed since.
        stream = client.session(VERSION, self.network_maps.version)
        try:
            await self._consume(stream, client)
        finally:  # the heartbeat stream stays: heartbeats go on through the reconnect
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
                    self.router.submit(msg.routing, delivered(msg))
                # MapChainBroken (a delta on another version than the one held): reconnect
                if self.network_maps.take(msg.network_map) and self.network is not None:
                    self.network.submit(self.network_maps.complete())
                fenced = {cid for cid in changed if is_fenced(self.book.get(cid)[0])}
                if msg.type == COMPLETE:
                    self.log.info("complete set", version=msg.version, containers=len(self.book.desired))
                    self.batcher.forget_sent()  # report every assignment once after (re)connect
                    await self.resync(fenced)
                else:
                    self.executor.fence_off(fenced)
                    for cid in changed:
                        self.executor.enqueue(cid)
                if not started:
                    started = True
                    self._reconnect.reset()
                    self.connected.set()
                    self._beats_failed.clear()  # only a failure from now on ends this session
                    client.drop_failed_heartbeats()  # nor one of a stream that died before it
                    self._stream_before_session = client.heartbeat_stream
                    self._beats_wanted.set()
                    tg.create_task(session_part("heartbeats", self._until_heartbeats_fail()))
                    tg.create_task(session_part("status reports", send_loop(
                        self.batcher, client.update_status, linger=self._linger, on_timeout=self._status_timed_out)))
                    tg.create_task(self._until_renewed())
            raise ConnectionError("session stream closed by the server")

    def _status_timed_out(self, in_a_row: int) -> None:
        self.log.warning("status report timed out; sending it again on the same session", in_a_row=in_a_row)

    async def _until_renewed(self) -> None:
        await self.enrollment.renewed.wait()
        raise CertificateRenewed

    # ------------------------------------------------------------------ session tasks

    async def _until_heartbeats_fail(self) -> None:
        await self._beats_failed.wait()
        assert self._beats_failure is not None
        raise self._beats_failure

    async def _heartbeats(self, client: DispatcherClient) -> None:
        """Heartbeats for the agent's life, from its first session on, on one stream that
        outlives sessions. Why not one per session (as before): a session that ended for another
        reason (its stream broke, a status report timed out past its bound, a map chain broke)
        stopped the heartbeats until the next session was up, which under load is the wait for
        the server to take two new calls in (the session and a new heartbeat stream; issue 15:
        grpc.aio takes calls in at its loop's pace). At 1,000 hollow nodes that wait passed
        the server's liveness deadline thousands of times: nodes were declared down and their
        containers placed again while their agents were only reconnecting. Now heartbeats go on
        through a reconnect and the node stays heard. A heartbeat failure that ends the session
        (any error, or timeouts past ``heartbeat_patience``) closes the stream and stops the
        heartbeats until the next session is up, as before.

        Without a session, heartbeats go on for at most ``heartbeat_patience.PATIENCE_PERIODS``
        periods (``_no_session_for_too_long``): a node whose sessions keep failing before they
        start (its engine is down, a complete set it cannot take) must still go DOWN so that
        its containers are placed elsewhere, as before, not be kept READY by heartbeats alone."""
        while True:
            raise_if_cancelled()
            await self._beats_wanted.wait()
            try:
                failure = await self._beat_until_failure(client)
            except asyncio.CancelledError:
                raise_if_cancelled()  # the agent stops
                failure = ConnectionError("a heartbeat call was cancelled")
            except Exception as exc:  # anything else in the loop ends the session, as it did
                failure = exc
            client.close_heartbeats()
            self._beats_wanted.clear()
            self._beats_failure = failure
            self._beats_failed.set()
            if not self.connected.is_set():  # no session's "disconnected" line will say it
                self.log.warning("heartbeats stopped until the next session", reason=describe(failure))

    def _heartbeats_ended(self, task: asyncio.Task[None]) -> None:
        """The heartbeat task ends only when the agent stops; anything else is a bug to see."""
        if not task.cancelled() and task.exception() is not None:
            self.log.error("heartbeats ended", error=describe(task.exception() or Exception()))

    def _no_session_for_too_long(self) -> Exception | None:
        if self.connected.is_set():
            return None
        alone = time.monotonic() - self._session_ended_at
        if alone < heartbeat_patience.PATIENCE_PERIODS * self.heartbeat_period:
            return None
        return ConnectionError(f"no session for {alone:.1f} s")

    async def _beat_until_failure(self, client: DispatcherClient) -> Exception:
        """Heartbeats at the server's period until one fails in a way that ends the session
        (returned). One that times out is sent again at once while the last answer is recent
        (``heartbeat_patience``: a slow replica is not a dead one, and a reconnect costs it a
        complete set); one that failed because the channel changed under it (a renewed
        certificate, a fail-over: ``DispatcherClient.use``) goes again on the new channel."""
        last_answered = time.monotonic()
        while True:
            raise_if_cancelled()
            if (alone := self._no_session_for_too_long()) is not None:
                return alone
            deadline = max(self.heartbeat_period, 5.0)
            self._node_status.message = self.network.problem if self.network is not None else ""
            stats = await self.router.collect_if_up(node=self.name) if self.router is not None else None
            channel_generation = client.generation
            stream = client.heartbeat_stream
            try:
                period = await client.heartbeat(self._node_status, deadline_seconds=deadline, router_stats=stats)
            except asyncio.CancelledError:
                # grpc.aio raises this (not an AioRpcError) for a call whose channel was closed
                # under it (fail-over, re-registration, a renewed certificate's old channel).
                raise_if_cancelled()
                if client.generation != channel_generation:
                    continue
                return ConnectionError("the heartbeat call was cancelled")
            except Exception as exc:
                if client.generation != channel_generation:
                    continue
                if (stream is not None and stream is self._stream_before_session
                        and code_of(exc) is not grpc.StatusCode.DEADLINE_EXCEEDED):
                    # The stream is older than this session and its call is over: it may have
                    # died with the last session before anyone noticed. Once, on a new stream.
                    self._stream_before_session = None
                    continue
                if self.metrics is not None:
                    self.metrics.heartbeat(ok=False)
                if heartbeat_patience.keep_session(code_of(exc), last_answered=last_answered,
                                                   now=time.monotonic(), period=self.heartbeat_period):
                    self.log.warning("heartbeat timed out; sending another on the same session",
                                     seconds_since_last_answer=round(time.monotonic() - last_answered, 1))
                    # A pause, so that a server answering DEADLINE_EXCEEDED at once is not spun on.
                    await asyncio.sleep(min(1.0, self.heartbeat_period / 10))
                    continue
                return exc
            last_answered = time.monotonic()
            if self.metrics is not None:
                self.metrics.heartbeat(ok=True)
            self.servers.learn(client.last_replicas)
            if period > 0:
                self.heartbeat_period = period / 1000.0
            self.image_collection.start_if_due(client.last_prune_requested, self._node_status.prune.request)
            await self.image_collection.pause(self.heartbeat_period)

    async def _collect_images(self, request: int) -> None:
        """Remove the registry images nothing needs (nodeagent.images); the result goes out with
        the next heartbeat (NodeStatus.prune). ``request``: the ``ccs node prune`` answered."""
        if self.executor is None:
            return
        in_use = {c.spec.image for c in (*self.book.desired.values(), *self.book.removing.values())}
        try:
            result = await self.executor.images.prune(self.runtime, in_use, request, time.time())
        except RuntimeFailure as exc:  # the engine failed us: said in the answer, retried next time
            result = resources_pb2.ImagePrune(request=request, message=f"image collection failed: {exc.reason}"[:2000])
        self._node_status.prune.CopyFrom(result)
        if result.images_removed or result.message:
            self.log.info("images collected", removed=list(result.images), bytes_freed=result.bytes_freed,
                          problems=result.message or None)

    # ------------------------------------------------------------------ engine side

    async def resync(self, fenced: set[str] | None = None) -> None:
        """Re-plan every assigned container from the engine's listing (see EngineSync)."""
        assert self.engine_sync is not None
        await self.engine_sync.resync(fenced)

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
