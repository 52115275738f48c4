"""Node calls authenticated by the node certificate of the mutual-TLS connection.

The auth interceptor hands every Dispatcher method but Register to :meth:`NodeGuard.wrap`
when the server runs TLS. grpc.aio's interceptor sees only the method name and metadata, not
the connection, so the check runs at the start of the call itself (the wrapped handler):

1. the peer presented a certificate (only the node port asks for one, and it was verified
   against the cluster CA by the handshake);
2. it is a node certificate (O = cluster, OU = ccs-node, CN = node) and has not expired (a
   connection made before its expiry lives on);
3. etcd's record of it (:mod:`controlplane.pki.node_certs`) exists and is not revoked.

The node the certificate names is then the call's identity, read by the Dispatcher through
:func:`current_node`. A long stream (the session) is checked again by the Dispatcher every
heartbeat period (:meth:`NodeGuard.authenticate`), so a revoked node's stream ends too.

Step 3 is a cache, not an etcd read per call: every heartbeat, status report and session
recheck of every node went through it (issue 15: at 2,000 nodes and a 5 s period that is
1,200 etcd reads a second for answers that almost never change). Once the guard follows the
certificate records (:meth:`NodeGuard.follow`, through the informer's watch of ``/ccs/``: no
watch of its own), a status read from etcd is kept until its record changes, when the
informer's batch drops it (a revocation on any replica ends the node's calls as soon as this
replica's cache sees it), or at most ``FOLLOWED_TTL``; before that, and for an answer read
while a record changed, nothing is kept.
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import AsyncIterator, Callable
from contextvars import ContextVar
from typing import Any

import grpc
from cryptography import x509

from ccs.errors import REASON_CERT_REVOKED, REASON_ETCD_UNAVAILABLE, REASON_KEY
from controlplane.pki import certs, node_certs
from controlplane.store import StoreUnavailable, keys
from controlplane.store.etcd import Etcd

_CURRENT: ContextVar[certs.NodeCert | None] = ContextVar("ccs_node_peer", default=None)
_CACHE_MAX = 4096
FOLLOWED_TTL = 600.0
"""How long a certificate's status is kept while its records are followed (a safety bound)."""
_MARKER = "/nodecerts/"


def current_node() -> certs.NodeCert | None:
    """The node the running call authenticated as (None outside a guarded call)."""
    return _CURRENT.get()


class NodeGuard:
    def __init__(self, etcd: Etcd, clock: Callable[[], dt.datetime] | None = None,
                 monotonic: Callable[[], float] = time.monotonic) -> None:
        self.etcd = etcd
        self._clock = clock or (lambda: dt.datetime.now(dt.UTC))
        self._monotonic = monotonic
        self._parsed: dict[bytes, certs.NodeCert | None] = {}
        self._status: dict[str, tuple[float, str]] = {}  # record key -> (kept until, status)
        self._following = False
        self._generation = 0  # bumped by every change of a certificate record
        self.reads = 0  # status records read from etcd (tests: a heartbeat must not cost one)

    def follow(self, follow_keys: Callable[[str, Callable[[list[str] | None], None]], None]) -> None:
        """Keep statuses, dropped when their records change: ``follow_keys`` is the informer's
        (:meth:`controlplane.informer.Informer.follow_keys`; pki sits below the informer)."""
        follow_keys(_MARKER, self._changed)
        self._following = True

    def _changed(self, changed: list[str] | None) -> None:
        self._generation += 1
        if changed is None:
            self._status.clear()
            return
        for key in changed:
            self._status.pop(key, None)

    async def _cert_status(self, ident: certs.NodeCert) -> str:
        key = keys.node_cert(ident.cluster, ident.node, ident.serial)
        now = self._monotonic()
        hit = self._status.get(key)
        if hit is not None and hit[0] > now:
            return hit[1]
        generation = self._generation
        state = await node_certs.status(self.etcd, ident.cluster, ident.node, ident.serial)
        self.reads += 1
        if self._following and generation == self._generation:
            if len(self._status) >= _CACHE_MAX:
                self._status.clear()
            self._status[key] = (now + FOLLOWED_TTL, state)
        return state

    def _identity(self, pem: bytes) -> certs.NodeCert | None:
        hit = self._parsed.get(pem, False)
        if hit is not False:
            return hit  # type: ignore[return-value]
        try:
            ident: certs.NodeCert | None = certs.node_identity(x509.load_pem_x509_certificate(pem))
        except ValueError:
            ident = None
        if len(self._parsed) >= _CACHE_MAX:
            self._parsed.clear()
        self._parsed[pem] = ident
        return ident

    async def authenticate(self, context: grpc.aio.ServicerContext) -> certs.NodeCert:
        """The node this call comes from, or the call is aborted (UNAUTHENTICATED, or
        UNAVAILABLE when etcd cannot say)."""
        auth = context.auth_context() or {}
        pems = auth.get("x509_pem_cert") or []
        if not pems:
            await _abort(context, grpc.StatusCode.UNAUTHENTICATED,
                         "node calls need the node's certificate: connect to the node port with mutual TLS")
        ident = self._identity(pems[0])
        if ident is None:
            await _abort(context, grpc.StatusCode.UNAUTHENTICATED, "the client certificate is not a node certificate")
        assert ident is not None
        if ident.not_after <= self._clock():
            await _abort(context, grpc.StatusCode.UNAUTHENTICATED,
                         f"node certificate {ident.serial} of {ident.node!r} expired at {ident.not_after.isoformat()}")
        try:
            state = await self._cert_status(ident)
        except StoreUnavailable:
            await _abort(context, grpc.StatusCode.UNAVAILABLE, "etcd is unavailable: cannot check the node certificate",
                         REASON_ETCD_UNAVAILABLE)
            raise AssertionError("unreachable") from None
        if state == "revoked":
            await _abort(context, grpc.StatusCode.UNAUTHENTICATED,
                         f"node certificate {ident.serial} of {ident.node!r} in cluster {ident.cluster!r} was revoked",
                         REASON_CERT_REVOKED)
        if state != "ok":
            await _abort(context, grpc.StatusCode.UNAUTHENTICATED,
                         f"node certificate {ident.serial} of {ident.node!r} is not known to this control plane "
                         f"(its node or cluster {ident.cluster!r} was removed)")
        return ident

    def wrap(self, handler: grpc.RpcMethodHandler) -> grpc.RpcMethodHandler:
        """``handler`` with :meth:`authenticate` run first; any of the four call shapes."""
        guard = self.authenticate
        if handler.unary_unary is not None:
            inner_uu = handler.unary_unary

            async def unary_unary(request: Any, context: grpc.aio.ServicerContext) -> Any:
                _CURRENT.set(await guard(context))
                return await inner_uu(request, context)

            return grpc.unary_unary_rpc_method_handler(
                unary_unary, handler.request_deserializer, handler.response_serializer)
        if handler.unary_stream is not None:
            inner_us = handler.unary_stream

            async def unary_stream(request: Any, context: grpc.aio.ServicerContext) -> AsyncIterator[Any]:
                _CURRENT.set(await guard(context))
                async for item in inner_us(request, context):
                    yield item

            return grpc.unary_stream_rpc_method_handler(
                unary_stream, handler.request_deserializer, handler.response_serializer)
        if handler.stream_unary is not None:
            inner_su = handler.stream_unary

            async def stream_unary(requests: Any, context: grpc.aio.ServicerContext) -> Any:
                _CURRENT.set(await guard(context))
                return await inner_su(requests, context)

            return grpc.stream_unary_rpc_method_handler(
                stream_unary, handler.request_deserializer, handler.response_serializer)
        inner_ss = handler.stream_stream

        async def stream_stream(requests: Any, context: grpc.aio.ServicerContext) -> AsyncIterator[Any]:
            _CURRENT.set(await guard(context))
            async for item in inner_ss(requests, context):
                yield item

        return grpc.stream_stream_rpc_method_handler(
            stream_stream, handler.request_deserializer, handler.response_serializer)


async def _abort(context: grpc.aio.ServicerContext, code: grpc.StatusCode, message: str, reason: str = "") -> None:
    await context.abort(code, message, ((REASON_KEY, reason),) if reason else ())
