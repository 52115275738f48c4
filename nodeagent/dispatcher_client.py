"""The agent's side of the Dispatcher protocol: stubs, credentials, and error classification.

All gRPC calls of the agent go through `DispatcherClient`, so the bearer credential (servers
started with --insecure; with TLS the node certificate of the channel authenticates) is attached
and status codes are sorted into "fatal" (the agent cannot fix it by retrying: a refused join
token, a revoked credential) and "retry" (everything else: the control plane is down,
restarting, or behind a flaky network) in one place. The channel is passed in: the agent makes
a real one, tests pass a channel to an in-process server (the transport seam).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping

import grpc
import grpc.aio

from ccs.message_size import CLIENT_OPTIONS
from ccs.v1 import agent_pb2, agent_pb2_grpc, resources_pb2

from .answered_stream import AnsweredStream, AnswerTimeout
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
        #: Counts the channel changes (``use``): a heartbeat that failed while it changed is not
        #: the server's failure.
        self.generation = 0
        #: The API replicas the last heartbeat answer named (empty from an older server).
        self.last_replicas: list[agent_pb2.Replica] = []
        self.last_prune_requested = 0
        # Heartbeats go as messages on one stream (``answered_stream``) that outlives sessions
        # on the same channel (``Agent._heartbeats``); None until the first, or after it failed.
        self._beats: AnsweredStream[agent_pb2.HeartbeatRequest, agent_pb2.HeartbeatResponse] | None = None
        # False once the server answered the stream UNIMPLEMENTED (a server of before it):
        # from then on one unary call each, as before.
        self._beats_on_stream = True

    def close_heartbeats(self) -> None:
        """End the heartbeat stream (its heartbeats failed, or the channel changes)."""
        if self._beats is not None:
            self._beats.close()
        self._beats = None

    @property
    def heartbeat_stream(self) -> object | None:
        """The heartbeat stream the next heartbeat goes on (None: it opens a new one)."""
        return self._beats

    def drop_failed_heartbeats(self) -> None:
        """Close the heartbeat stream if its call is already over, so that the next heartbeat
        opens a new one instead of failing with that old error (a new session starts: the
        stream may have died with the last one, while no heartbeat was waiting on it)."""
        if self._beats is not None and self._beats.failed:
            self.close_heartbeats()

    def use(self, channel: grpc.aio.Channel) -> grpc.aio.Channel:
        """Send later calls on ``channel`` (a renewed certificate's); returns the previous one."""
        self.close_heartbeats()
        old, self.channel = self.channel, channel
        self.generation += 1
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
            if self._beats is None:
                self._beats = AnsweredStream(self._stub.Heartbeats(metadata=self.metadata), "heartbeat")
            beats = self._beats  # `use` may replace it while this heartbeat waits
            try:
                response = await beats.ask(request, deadline_seconds)
            except AnswerTimeout:
                raise  # the stream stays: the next heartbeat goes on it (the agent's patience)
            except BaseException as exc:
                beats.close()
                if self._beats is beats:
                    self._beats = None
                if code_of(exc) != grpc.StatusCode.UNIMPLEMENTED:
                    raise
                self._beats_on_stream = False  # an older server: one call per heartbeat
        if response is None:
            response = await self._stub.Heartbeat(request, metadata=self.metadata, timeout=deadline_seconds)
        self.last_replicas = list(response.replicas)
        # NodeSpec.prune_requested: `ccs node prune` asks the agent to collect images now.
        self.last_prune_requested = int(response.prune_requested)
        return int(response.period_ms)

    async def update_status(self, request: agent_pb2.UpdateStatusRequest) -> None:
        """One unary call per batch of statuses, on purpose. On a stream like the heartbeats'
        (tried in the eleventh session) the server took every report in at once, so the agent's
        batcher no longer merged a container's successive states while a report waited: the
        server wrote each state, and at 500 hollow nodes / 20,000 containers every run of the
        deploy on the stream (59-79 s) was slower than the one-call-per-batch build run beside
        it (44-69 s) (README, "Status reports on a stream, tried and not kept")."""
        await self._stub.UpdateStatus(request, metadata=self.metadata, timeout=self._timeout)

    def logs_opener(self) -> OpenStream:
        def open_stream(
            out: AsyncIterator[agent_pb2.LogChunk],
        ) -> AsyncIterator[agent_pb2.LogRequest]:
            call: AsyncIterator[agent_pb2.LogRequest] = self._stub.Logs(out, metadata=self.metadata)
            return call

        return open_stream
