"""The Dispatcher servicer: registration, assignment sessions, heartbeats, status."""

from __future__ import annotations

import datetime as dt
import secrets
from collections.abc import AsyncIterator

import grpc
import structlog
from cryptography import x509

from ccs.errors import REASON_CERT_REVOKED, REASON_KEY
from ccs.join_token import JoinTokenError, parse
from ccs.v1 import agent_pb2, agent_pb2_grpc
from ccs.v1 import resources_pb2 as pb
from controlplane.auth import Principal, TokenVerifier, bearer, digest, new_token, token_record
from controlplane.dispatcher.hub import AssignmentHub, NodeSession
from controlplane.dispatcher.liveness import NodeLiveness
from controlplane.dispatcher.logs_relay import LogBroker
from controlplane.dispatcher.map_sender import QueuedMessage
from controlplane.dispatcher.outgoing import attach
from controlplane.dispatcher.pull_auth import LoginSource
from controlplane.dispatcher.recheck import rechecked
from controlplane.dispatcher.status_writer import ContainerStatusWriter
from controlplane.grpc_errors import FailedPrecondition, InvalidArgument, map_errors
from controlplane.informer import Informer
from controlplane.names import check_labels, check_name
from controlplane.pki import certs, node_certs
from controlplane.pki.issuer import NodeIssuer
from controlplane.pki.node_auth import NodeGuard, current_node
from controlplane.replicas import ReplicaRegistry
from controlplane.secrets.store import SecretStore
from controlplane.store import Conflict, keys, reads
from controlplane.store.codec import decode
from controlplane.store.etcd import Etcd
from controlplane.store.events import record_event
from controlplane.store.meta import new_meta, now, touch
from controlplane.store.txn import Txn

log = structlog.get_logger("ccs.dispatcher")

class PermissionDenied(Exception):
    pass


def nodecred_key(cluster: str, node: str) -> str:
    return f"{keys.subtree(cluster)}nodecred/{node}"


@map_errors
class DispatcherServicer(agent_pb2_grpc.DispatcherServicer):
    def __init__(
        self, etcd: Etcd, informer: Informer, hub: AssignmentHub, verifier: TokenVerifier,
        broker: LogBroker, issuer: NodeIssuer | None = None, guard: NodeGuard | None = None,
        files: SecretStore | None = None,
        replicas: ReplicaRegistry | None = None, logins: LoginSource | None = None,
        liveness: NodeLiveness | None = None,
    ) -> None:
        self.etcd, self.informer, self.hub, self.verifier = etcd, informer, hub, verifier
        self.files = files  # the values of mounted secrets and configs (mounted_files)
        self.logins = logins  # pull logins (pull_auth), cached: controlplane.registry.login_cache
        self.broker = broker
        # With TLS: certificates are issued at registration and node calls are authenticated
        # by them (the guard); without (--insecure, or tests), bearer node credentials.
        self.issuer = issuer if issuer is not None and issuer.tls else None
        self.guard = guard
        # The API replicas alive now (controlplane.replicas): agents fail over among them.
        self.replicas = replicas
        self.statuses = ContainerStatusWriter(etcd, informer)
        # Heartbeats stay in memory; this replica's alive keys say who it hears (dispatcher.liveness).
        self.liveness = liveness

    async def _principal(self, context: grpc.aio.ServicerContext) -> Principal:
        if self.issuer is not None:
            # The auth interceptor ran the node guard before this call (controlplane.pki.node_auth).
            peer = current_node()
            if peer is None:
                await context.abort(grpc.StatusCode.UNAUTHENTICATED, "a node certificate is required")
                raise AssertionError("unreachable")
            return Principal(peer.node, "node", peer.cluster, peer.node)
        token = bearer(context.invocation_metadata())
        p = await self.verifier.verify(token or "")
        if p is None or p.role != "node":
            await context.abort(grpc.StatusCode.UNAUTHENTICATED, "a node credential is required")
            raise AssertionError("unreachable")
        return p

    async def Register(
        self, request: agent_pb2.RegisterRequest, context: grpc.aio.ServicerContext
    ) -> agent_pb2.RegisterResponse:
        cluster = await self._check_join_token(request.join_token, context)
        name = check_name("name", request.name)
        check_labels("labels", request.labels)
        if not request.status.address:
            raise InvalidArgument("status.address", "is required (the node's reachable IP)")
        csr = None
        if self.issuer is not None:
            if not request.csr_pem:
                raise FailedPrecondition(
                    "csr_pem: required: this server gives nodes certificates (mutual TLS); the agent "
                    "is older than that: upgrade it")
            try:
                csr = certs.parse_csr(request.csr_pem)
            except certs.CsrError as exc:
                raise InvalidArgument("csr_pem", str(exc).removeprefix("csr_pem: ")) from None
        elif request.csr_pem:
            raise FailedPrecondition("csr_pem: this server runs --insecure and issues no certificates; "
                                     "start the agent with --insecure")
        key = keys.node(cluster, name)
        old_kv = await self.etcd.get(key)
        status = pb.NodeStatus()
        status.CopyFrom(request.status)
        status.state = pb.NODE_STATE_READY
        status.last_heartbeat.CopyFrom(now())
        txn = Txn().require_present(keys.join_token(cluster), "cluster", cluster)
        if old_kv is None:
            node = pb.Node(meta=new_meta(name, request.labels), cluster=cluster, status=status,
                           spec=pb.NodeSpec(role=pb.NODE_ROLE_WORKER,
                                            availability=pb.NODE_AVAILABILITY_ACTIVE))
            txn.create(key, node, "node", name)
            record_event(txn, cluster, "node", name, "Registered",
                         f"node {name} joined at {status.address} ({status.capacity.cpus:g} CPUs)")
        else:
            node = decode(old_kv, pb.Node)
            node.status.CopyFrom(status)
            node.meta.labels.update(request.labels)
            touch(node.meta)
            txn.update(key, node, "node", name, old_kv.mod_revision)
            record_event(txn, cluster, "node", name, "Reregistered", f"node {name} registered again")
        # A name registered again takes over: what the previous holder had stops working.
        old_cred = await self.etcd.get(nodecred_key(cluster, name))
        if old_cred is not None:
            txn.delete(keys.token(old_cred.value.decode())).delete(old_cred.key)
        response = agent_pb2.RegisterResponse(
            cluster=cluster, replicas=await self.replicas.current() if self.replicas is not None else [])
        if self.issuer is not None and csr is not None:
            issued_at = dt.datetime.now(dt.UTC)
            await node_certs.revoke_all(self.etcd, txn, cluster, name, issued_at)
            cert = self.issuer.sign(csr, cluster, name, issued_at)
            node_certs.record_issued(txn, cluster, name, certs.serial_hex(cert), cert.not_valid_after_utc, issued_at)
            response.certificate_pem = certs.cert_pem(cert).decode()
            response.ca_pem = self.issuer.ca_pem
            response.node_port = self.issuer.node_port
        else:
            credential = new_token("ccsnode")
            txn.put(keys.token(digest(credential)), token_record(Principal(name, "node", cluster, name)))
            txn.put(nodecred_key(cluster, name), digest(credential).encode())
            response.credential = credential
        node.meta.resource_version = await txn.commit(self.etcd)
        response.node.CopyFrom(node)
        log.info("node registered", cluster=cluster, node=name, address=status.address,
                 certificate=bool(response.certificate_pem))
        return response

    async def _check_join_token(self, presented: str, context: grpc.aio.ServicerContext) -> str:
        """The cluster the token joins, or the call is refused with the reason."""
        try:
            token = parse(presented)
        except JoinTokenError as exc:
            await context.abort(grpc.StatusCode.UNAUTHENTICATED, f"invalid join token: {exc}")
            raise AssertionError("unreachable") from None
        if self.issuer is not None:
            if token.version == 1:
                await context.abort(
                    grpc.StatusCode.UNAUTHENTICATED,
                    "this join token is of the previous format (it carries no CA fingerprint, so the agent "
                    f"could not check this server): get the current one with `ccs cluster join-token {token.cluster}`")
            if token.ca_fingerprint != self.issuer.api_fingerprint:
                await context.abort(
                    grpc.StatusCode.UNAUTHENTICATED,
                    "the join token's CA fingerprint is not this server's CA: the token is for another "
                    "control plane, or its CA changed; get the current token with "
                    f"`ccs cluster join-token {token.cluster}`")
        stored = await self.etcd.get(keys.join_token(token.cluster))
        if stored is None or not secrets.compare_digest(stored.value, token.stored().encode()):
            await context.abort(grpc.StatusCode.UNAUTHENTICATED, "invalid or rotated join token")
        return token.cluster

    async def RenewCertificate(
        self, request: agent_pb2.RenewCertificateRequest, context: grpc.aio.ServicerContext
    ) -> agent_pb2.RenewCertificateResponse:
        p = await self._principal(context)
        if self.issuer is None:
            raise FailedPrecondition("this server runs --insecure and issues no certificates")
        try:
            csr = certs.parse_csr(request.csr_pem)
        except certs.CsrError as exc:
            raise InvalidArgument("csr_pem", str(exc).removeprefix("csr_pem: ")) from None
        issuer, peer = self.issuer, current_node()
        assert peer is not None  # _principal refused the call otherwise
        key, current = keys.node(p.cluster, p.node), keys.node_cert(p.cluster, p.node, peer.serial)

        async def attempt() -> x509.Certificate:
            # The node record is rewritten (unchanged) and the current certificate's record is
            # guarded in the same transaction, so a concurrent `ccs node revoke`/`rm` (guarded on
            # the node record) either sees the new certificate or makes this fail for good.
            record = await self.etcd.get(current)
            if record is None or node_certs.CertRecord.decode(record.value).revoked_at:
                await context.abort(grpc.StatusCode.UNAUTHENTICATED, "the node certificate was revoked",
                                    ((REASON_KEY, REASON_CERT_REVOKED),))
            assert record is not None
            node = await reads.get(self.etcd, key, pb.Node, "node", p.node)
            issued_at = dt.datetime.now(dt.UTC)
            cert = issuer.sign(csr, p.cluster, p.node, issued_at)
            txn = Txn().update(key, node, "node", p.node, node.meta.resource_version)
            txn.require_revision(current, "node certificate", peer.serial, record.mod_revision)
            node_certs.record_issued(txn, p.cluster, p.node, certs.serial_hex(cert), cert.not_valid_after_utc,
                                     issued_at)
            await txn.commit(self.etcd)
            return cert

        for tries_left in range(4, -1, -1):  # a heartbeat may write the record meanwhile
            try:
                cert = await attempt()
                break
            except Conflict:
                if not tries_left:
                    raise
        log.info("node certificate renewed", cluster=p.cluster, node=p.node, serial=certs.serial_hex(cert),
                 not_after=cert.not_valid_after_utc.isoformat())
        return agent_pb2.RenewCertificateResponse(certificate_pem=certs.cert_pem(cert).decode(),
                                                  ca_pem=self.issuer.ca_pem)

    async def Session(
        self, request: agent_pb2.SessionRequest, context: grpc.aio.ServicerContext
    ) -> AsyncIterator[bytes]:
        """The node's stream: encoded ``SessionMessage``s (:class:`~.map_sender.QueuedMessage`:
        the network map's bytes are shared by every session that gets them, so the stream is
        registered with :func:`session_message_bytes` as its serializer, see :func:`add_to_server`)."""
        p = await self._principal(context)
        await self.informer.synced.wait()
        state = self.informer.clusters.get(p.cluster)
        if state is None or p.node not in state.nodes:
            await context.abort(grpc.StatusCode.NOT_FOUND, f"node {p.node!r} is not registered")
        await self._note_alive(p, None, opened=True)  # its alive key, READY, last_heartbeat
        session, complete = self.hub.open(p.cluster, p.node, request.held_map_version)
        m = complete.network_map
        log.info("session opened", cluster=p.cluster, node=p.node,
                 assignments=len(complete.header.assignments), version=complete.header.version,
                 network_map="delta" if m.base_version else "complete" if m.version else "current")
        # A stream outlives a revocation: with node certificates, the node is checked again
        # every heartbeat period (busy or quiet), so a revoked node's session ends too.
        messages = _queued(session)
        if self.guard is not None and self.issuer is not None:
            guard = self.guard
            messages = rechecked(messages, self.hub.heartbeat_period_ms / 1000,
                                 lambda: guard.authenticate(context))
        try:
            yield complete.encode(await attach(self.files, self.logins, p.cluster, complete.header))
            async for msg in messages:
                yield msg.encode(await attach(self.files, self.logins, p.cluster, msg.header))
        finally:
            self.hub.close(session)
            log.info("session closed", cluster=p.cluster, node=p.node)

    async def Heartbeat(
        self, request: agent_pb2.HeartbeatRequest, context: grpc.aio.ServicerContext
    ) -> agent_pb2.HeartbeatResponse:
        return await self._heartbeat(await self._principal(context), request)

    async def Heartbeats(
        self, requests: AsyncIterator[agent_pb2.HeartbeatRequest], context: grpc.aio.ServicerContext
    ) -> AsyncIterator[agent_pb2.HeartbeatResponse]:
        """Heartbeats on one stream, answered in order (see the proto). The node is checked when
        the stream opens and, with node certificates, again every heartbeat period, as a session
        is: a revoked node's stream ends too."""
        p = await self._principal(context)
        beats: AsyncIterator[agent_pb2.HeartbeatRequest] = aiter(requests)
        if self.guard is not None and self.issuer is not None:
            guard = self.guard
            beats = rechecked(beats, self.hub.heartbeat_period_ms / 1000, lambda: guard.authenticate(context))
        async for request in beats:
            yield await self._heartbeat(p, request)

    async def _heartbeat(self, p: Principal, request: agent_pb2.HeartbeatRequest) -> agent_pb2.HeartbeatResponse:
        node = await self._note_alive(p, request.status if request.HasField("status") else None, opened=False)
        if request.HasField("router_stats"):
            stats = pb.RouterStats()
            stats.CopyFrom(request.router_stats)
            stats.node = p.node
            state = self.informer.clusters.get(p.cluster)
            stored = state.router_stats.get(p.node) if state is not None else None
            if stored is None or not _same_counters(stored, stats):
                # Idle routers report the same counters every heartbeat: write only changes.
                if not stats.HasField("collected_at"):
                    stats.collected_at.CopyFrom(now())
                await Txn().put(keys.router_stats(p.cluster, p.node), stats).commit(self.etcd)
        return agent_pb2.HeartbeatResponse(period_ms=self.hub.heartbeat_period_ms,
                                           replicas=self.replicas.replicas() if self.replicas is not None else [],
                                           prune_requested=node.spec.prune_requested)

    async def _note_alive(self, p: Principal, reported: pb.NodeStatus | None, *, opened: bool) -> pb.Node:
        """Record that ``p``'s agent was heard: in memory for a heartbeat; in etcd only what
        changed (the node's record when its status differs from the cached one or the node is
        not READY; this replica's alive key when it does not hold it) and, when a session opens,
        always both (``last_heartbeat`` then says when). One transaction, guarded on the record.
        Returns the node as stored."""
        key = keys.node(p.cluster, p.node)
        state = self.informer.clusters.get(p.cluster)
        node = state.nodes.get(p.node) if state is not None else None
        for _ in range(5):
            if node is None:
                node = await reads.get(self.etcd, key, pb.Node, "node", p.node)
            updated = _as_reported(node, reported, opened)
            held = self.liveness is None or (
                self.liveness.heard(p.cluster, p.node) if not opened else False)
            if held and updated == node:
                return node
            txn = Txn()
            rewrite = updated != node
            if rewrite:
                updated.status.last_heartbeat.CopyFrom(now())
                txn.update(key, updated, "node", p.node, node.meta.resource_version)
                if node.status.state != pb.NODE_STATE_READY:
                    record_event(txn, p.cluster, "node", p.node, "Ready", f"node {p.node} is ready again")
            else:
                txn.require_present(key, "node", p.node)
            if self.liveness is not None and not held:
                self.liveness.vouch(txn, p.cluster, p.node)
            try:
                revision = await txn.commit(self.etcd)
            except Conflict:
                node = None  # changed meanwhile: read it afresh
                continue
            if self.liveness is not None and not held:
                self.liveness.vouched(p.cluster, p.node)
            if rewrite:
                updated.meta.resource_version = revision
            return updated
        raise Conflict("node", p.node, 0, 0)

    async def UpdateStatus(
        self, request: agent_pb2.UpdateStatusRequest, context: grpc.aio.ServicerContext
    ) -> agent_pb2.UpdateStatusResponse:
        p = await self._principal(context)
        await self.statuses.write(p, request, context)
        return agent_pb2.UpdateStatusResponse()

    async def Logs(
        self, request_iterator: AsyncIterator[agent_pb2.LogChunk], context: grpc.aio.ServicerContext
    ) -> AsyncIterator[agent_pb2.LogRequest]:
        p = await self._principal(context)
        # The relay's start is told at once (the agent, and tests, know it was accepted).
        await context.send_initial_metadata(())
        requests = self.broker.agent_channel(p.cluster, p.node, request_iterator)
        if self.guard is None or self.issuer is None:
            async for req in requests:
                yield req
            return
        # An agent keeps its relays for its lifetime: like the session, the node is checked
        # again every heartbeat period, so a revoked or removed node's relays end too.
        guard = self.guard
        async for req in rechecked(requests, self.hub.heartbeat_period_ms / 1000,
                                   lambda: guard.authenticate(context)):
            yield req


def _as_reported(node: pb.Node, reported: pb.NodeStatus | None, opened: bool) -> pb.Node:
    """``node`` as the agent's report makes it (a copy): READY, with what the agent says of its host."""
    out = pb.Node()
    out.CopyFrom(node)
    status = out.status
    if reported is not None:
        status.address = reported.address or status.address
        status.hostname = reported.hostname or status.hostname
        if reported.HasField("capacity"):
            status.capacity.CopyFrom(reported.capacity)
        status.docker_version = reported.docker_version or status.docker_version
        status.agent_version = reported.agent_version or status.agent_version
        status.agent_features[:] = reported.agent_features  # none: an older agent (ccs.features)
        if reported.HasField("prune"):  # its last image collection (`ccs node prune` waits for it)
            status.prune.CopyFrom(reported.prune)
    status.state = pb.NODE_STATE_READY
    if not opened:
        # What the agent could not put in place (its network fabric's problems), "" when all is
        # well: kept, cut and NUL-free, since refusing a heartbeat would be worse. A session's
        # opening carries no status: the message stays until the first heartbeat.
        status.message = _agent_message(reported.message if reported is not None else "")
    if opened:
        status.last_heartbeat.CopyFrom(now())  # a session opened: always written (see _note_alive)
    return out


def _same_counters(a: pb.RouterStats, b: pb.RouterStats) -> bool:
    return a.routing_version == b.routing_version and list(a.backends) == list(b.backends)


#: The longest agent-reported node message kept (a node record is read on every heartbeat).
MAX_AGENT_MESSAGE = 2000


def _agent_message(text: str) -> str:
    text = text.replace("\0", "")
    return text if len(text) <= MAX_AGENT_MESSAGE else text[: MAX_AGENT_MESSAGE - 3] + "..."


async def _queued(session: NodeSession) -> AsyncIterator[QueuedMessage]:
    """A session's messages until the hub ends it (None)."""
    while (msg := await session.next()) is not None:
        yield msg


def session_message_bytes(msg: bytes | agent_pb2.SessionMessage) -> bytes:
    """The Session stream's serializer: its messages come encoded (:meth:`DispatcherServicer.
    Session`); a message object is still encoded here, so nothing depends on which it gets."""
    return msg if isinstance(msg, bytes) else msg.SerializeToString()


class _Handlers:
    """Takes the method handlers the generated code registers, so they can be changed first."""

    def __init__(self) -> None:
        self.handlers: dict[str, grpc.RpcMethodHandler] = {}

    def add_generic_rpc_handlers(self, handlers: object) -> None:
        pass

    def add_registered_method_handlers(self, service: str, handlers: dict[str, grpc.RpcMethodHandler]) -> None:
        self.service, self.handlers = service, handlers


def add_to_server(servicer: DispatcherServicer, server: grpc.aio.Server) -> None:
    """Register the Dispatcher service as the generated code does, with one change: the Session
    stream's serializer passes bytes through (:func:`session_message_bytes`). The generated
    handlers are taken and re-registered (rather than written out) so that every other method,
    and any method added to the proto later, keeps the generated wiring."""
    taken = _Handlers()
    agent_pb2_grpc.add_DispatcherServicer_to_server(servicer, taken)
    handlers = dict(taken.handlers)
    session = handlers["Session"]
    handlers["Session"] = grpc.unary_stream_rpc_method_handler(
        session.unary_stream, request_deserializer=session.request_deserializer,
        response_serializer=session_message_bytes)
    server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler(taken.service, handlers),))
    server.add_registered_method_handlers(taken.service, handlers)
