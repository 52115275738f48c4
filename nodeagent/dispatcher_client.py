"""The agent's side of the Dispatcher protocol: stubs, credentials, and error classification.

All gRPC calls of the agent go through `DispatcherClient`, so the bearer credential (servers
started with --insecure; with TLS the node certificate of the channel authenticates) is attached
and status codes are sorted into "fatal" (the agent cannot fix it by retrying: a refused join
token, a revoked credential) and "retry" (everything else: the control plane is down,
restarting, or behind a flaky network) in one place. The channel is passed in: the agent makes
a real one, tests pass a channel to an in-process server (the transport seam).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Mapping

import grpc
import grpc.aio

from ccs.message_size import CLIENT_OPTIONS
from ccs.v1 import agent_pb2, agent_pb2_grpc, resources_pb2

from .logs_relay import OpenStream

#: Codes that no amount of retrying the same request fixes.
FATAL_REGISTER = frozenset(
    {
        grpc.StatusCode.UNAUTHENTICATED,
        grpc.StatusCode.PERMISSION_DENIED,
        grpc.StatusCode.INVALID_ARGUMENT,
        grpc.StatusCode.ALREADY_EXISTS,
        grpc.StatusCode.FAILED_PRECONDITION,
    }
)


#: Reconnect timing of the agent's gRPC channel (grpc-core channel arguments).
#:
#: Why: the agent's own retry loop (`Backoff`, capped at 2 s) is only half of the story. A channel
#: whose connection was refused sits in TRANSIENT_FAILURE and fails every RPC at once until its
#: *own* next connection attempt, which grpc-core schedules with a backoff growing 1.6x from 1 s up
#: to 120 s. After a 40 s control-plane outage that attempt came 14-25 s after the server was back.
#: Capping it at 1 s (+-20% jitter) keeps "server listens again -> session up" within about 2 s; a
#: refused connection costs little, and the connect timeout still bounds attempts to a dead host.
#:
#: The message size limits are every client's (``ccs.message_size``): the complete assignment set
#: of a node with many containers is larger than gRPC's 4 MiB default, which the agent refused, so
#: it reconnected for ever without its assignments.
CHANNEL_OPTIONS: tuple[tuple[str, int], ...] = (
    ("grpc.initial_reconnect_backoff_ms", 500),
    ("grpc.max_reconnect_backoff_ms", 1000),
    *CLIENT_OPTIONS,
)


class AgentError(Exception):
    """A condition the agent cannot recover from by itself (exit and tell the operator)."""


def code_of(exc: BaseException) -> grpc.StatusCode | None:
    if isinstance(exc, grpc.aio.AioRpcError):
        code: grpc.StatusCode = exc.code()
        return code
    return None


def describe(exc: BaseException) -> str:
    if isinstance(exc, grpc.aio.AioRpcError):
        return f"{exc.code().name}: {exc.details()}"
    return f"{type(exc).__name__}: {exc}"


class DispatcherClient:
    def __init__(self, channel: grpc.aio.Channel, *, unary_timeout: float = 30.0) -> None:
        self._stub = agent_pb2_grpc.DispatcherStub(channel)
        self.channel = channel
        self._timeout = unary_timeout
        self.credential = ""
        #: The API replicas the last heartbeat answer named (empty from an older server).
        self.last_replicas: list[agent_pb2.Replica] = []
        self.last_prune_requested = 0
        self._beats: HeartbeatStream | None = None
        self._beats_on_stream = True  # until the server answers the stream UNIMPLEMENTED

    def close_heartbeats(self) -> None:
        """End the heartbeat stream (the session ended, or the channel changes)."""
        if self._beats is not None:
            self._beats.close()
            self._beats = None

    def use(self, channel: grpc.aio.Channel) -> grpc.aio.Channel:
        """Send later calls on ``channel`` (a renewed certificate's); returns the previous one."""
        self.close_heartbeats()
        old, self.channel = self.channel, channel
        self._stub = agent_pb2_grpc.DispatcherStub(channel)
        return old

    @property
    def metadata(self) -> tuple[tuple[str, str], ...]:
        return (("authorization", f"Bearer {self.credential}"),) if self.credential else ()

    async def register(
        self, join_token: str, name: str, labels: Mapping[str, str], status: resources_pb2.NodeStatus,
        csr_pem: str = "",
    ) -> agent_pb2.RegisterResponse:
        request = agent_pb2.RegisterRequest(join_token=join_token, name=name, labels=labels, status=status,
                                            csr_pem=csr_pem)
        try:
            response: agent_pb2.RegisterResponse = await self._stub.Register(request, timeout=self._timeout)
        except grpc.aio.AioRpcError as exc:
            if exc.code() in FATAL_REGISTER:
                raise AgentError(f"registration refused ({exc.code().name}): {exc.details()}") from exc
            raise
        if not response.cluster or not (response.credential if not csr_pem else response.certificate_pem):
            raise AgentError("registration answered without a " + ("certificate" if csr_pem else "credential")
                             + " or cluster")
        return response

    async def renew(self, csr_pem: str) -> agent_pb2.RenewCertificateResponse:
        response: agent_pb2.RenewCertificateResponse = await self._stub.RenewCertificate(
            agent_pb2.RenewCertificateRequest(csr_pem=csr_pem), metadata=self.metadata, timeout=self._timeout)
        return response

    def session(self, agent_version: str, held_map_version: int = 0) -> AsyncIterator[agent_pb2.SessionMessage]:
        """The session stream; ``held_map_version``: the network map version held (0: none)."""
        call: AsyncIterator[agent_pb2.SessionMessage] = self._stub.Session(
            agent_pb2.SessionRequest(agent_version=agent_version, held_map_version=held_map_version),
            metadata=self.metadata,
        )
        return call

    async def heartbeat(
        self,
        status: resources_pb2.NodeStatus,
        *,
        deadline_seconds: float,
        router_stats: resources_pb2.RouterStats | None = None,
    ) -> int:
        """Send a heartbeat (with the router's counters, if any); returns the period the server
        wants, in ms (0: unchanged). The replicas it names are kept in `last_replicas`."""
        request = agent_pb2.HeartbeatRequest(status=status)
        if router_stats is not None:
            request.router_stats.CopyFrom(router_stats)
        response: agent_pb2.HeartbeatResponse | None = None
        if self._beats_on_stream:
            try:
                if self._beats is None:
                    self._beats = HeartbeatStream(self._stub, self.metadata)
                response = await self._beats.send(request, deadline_seconds)
            except HeartbeatTimeout:
                raise  # the stream stays: the next heartbeat goes on it (the agent's patience)
            except grpc.aio.AioRpcError as exc:
                self.close_heartbeats()
                if exc.code() != grpc.StatusCode.UNIMPLEMENTED:
                    raise
                self._beats_on_stream = False  # an older server: one call per heartbeat
        if response is None:
            response = await self._stub.Heartbeat(request, metadata=self.metadata, timeout=deadline_seconds)
        self.last_replicas = list(response.replicas)
        # NodeSpec.prune_requested: `ccs node prune` asks the agent to collect images now.
        self.last_prune_requested = int(response.prune_requested)
        return int(response.period_ms)

    async def update_status(self, request: agent_pb2.UpdateStatusRequest) -> None:
        await self._stub.UpdateStatus(request, metadata=self.metadata, timeout=self._timeout)

    def logs_opener(self) -> OpenStream:
        def open_stream(
            out: AsyncIterator[agent_pb2.LogChunk],
        ) -> AsyncIterator[agent_pb2.LogRequest]:
            call: AsyncIterator[agent_pb2.LogRequest] = self._stub.Logs(out, metadata=self.metadata)
            return call

        return open_stream


class HeartbeatTimeout(grpc.aio.AioRpcError):
    """No answer on the heartbeat stream within the deadline: DEADLINE_EXCEEDED, as a unary
    heartbeat's would be, but the stream is not over."""

    def __init__(self, deadline: float) -> None:
        super().__init__(grpc.StatusCode.DEADLINE_EXCEEDED, grpc.aio.Metadata(), grpc.aio.Metadata(),
                         f"no heartbeat answer within {deadline:g} s")


class HeartbeatStream:
    """The ``Heartbeats`` stream of a session: each heartbeat written, its answer read in order.

    Why a stream (issue 15): grpc.aio takes in new calls at the pace of the server's event loop
    (``tests/bench/grpc_accept.py``: 2-22 calls/s on a saturated loop), so at hundreds of nodes
    one call per heartbeat waited past its deadline before any handler ran, and the nodes were
    declared down. Messages on an open stream need no new call taken in. A reader task takes
    the answers off the stream, so a heartbeat that waits past its deadline raises
    DEADLINE_EXCEEDED (the agent's patience applies as to a unary call) without cancelling the
    read; answers come in the order of the heartbeats, so one that comes after its heartbeat
    timed out is known by its place and dropped, never taken for a later heartbeat's."""

    def __init__(self, stub: agent_pb2_grpc.DispatcherStub, metadata: tuple[tuple[str, str], ...]) -> None:
        self._call = stub.Heartbeats(metadata=metadata)
        self._answers: asyncio.Queue[agent_pb2.HeartbeatResponse | BaseException] = asyncio.Queue()
        self._written = 0  # heartbeats written
        self._taken = 0  # answers taken off the queue (the n-th answers the n-th heartbeat)
        self._reader = asyncio.get_running_loop().create_task(self._read())

    async def _read(self) -> None:
        try:
            while True:
                answer = await self._call.read()
                if answer is grpc.aio.EOF:
                    await self._answers.put(ConnectionError("the server ended the heartbeat stream"))
                    return
                await self._answers.put(answer)
        except asyncio.CancelledError:
            raise
        except BaseException as exc:  # the call's error (UNIMPLEMENTED from an older server, ...)
            await self._answers.put(exc)

    async def send(self, request: agent_pb2.HeartbeatRequest, deadline: float) -> agent_pb2.HeartbeatResponse:
        loop = asyncio.get_running_loop()
        end = loop.time() + deadline
        mine = self._written
        try:
            await asyncio.wait_for(self._call.write(request), deadline)
            self._written += 1
            while True:
                got = await asyncio.wait_for(self._answers.get(), max(0.0, end - loop.time()))
                if isinstance(got, BaseException):
                    raise got
                place, self._taken = self._taken, self._taken + 1
                if place == mine:
                    return got
                # An answer to an earlier heartbeat that had timed out: dropped.
        except TimeoutError:
            raise HeartbeatTimeout(deadline) from None

    def close(self) -> None:
        self._reader.cancel()
        self._call.cancel()
