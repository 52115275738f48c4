"""Bearer-token authentication for every RPC.

Tokens are random 256-bit strings; etcd stores only their SHA-256 digest, so a leaked
etcd snapshot does not leak credentials. Verified digests are cached for a few seconds
so a busy client costs one etcd read per ``CACHE_TTL`` rather than one per call; a
revoked token therefore stops working within ``CACHE_TTL``.

Roles: ``admin`` may call the user API; ``node`` credentials (issued at agent
registration) may call only the Dispatcher. Health checks, reflection and agent
registration (which carries a join token in its body) need no token.

Node calls under TLS (the default) carry no token: the node is who its certificate says,
checked by :class:`controlplane.pki.node_auth.NodeGuard` (mutual TLS, revocation). Bearer
node credentials remain for servers started with ``--insecure``.
"""

from __future__ import annotations

import hashlib
import json
import secrets
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import grpc

from ccs.errors import REASON_ETCD_UNAVAILABLE, REASON_KEY
from controlplane.pki.node_auth import NodeGuard
from controlplane.store import keys
from controlplane.store.etcd import Etcd
from controlplane.store.txn import Txn

CACHE_TTL = 5.0
PUBLIC_PREFIXES = ("/grpc.health.v1.Health/", "/grpc.reflection.")
PUBLIC_METHODS = ("/ccs.v1.Dispatcher/Register",)
NODE_PREFIX = "/ccs.v1.Dispatcher/"


@dataclass(frozen=True)
class Principal:
    name: str
    role: str  # "admin" | "node"
    cluster: str = ""
    node: str = ""


def digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def new_token(prefix: str = "ccs") -> str:
    return f"{prefix}_{secrets.token_urlsafe(32)}"


def token_record(p: Principal) -> bytes:
    return json.dumps(
        {"name": p.name, "role": p.role, "cluster": p.cluster, "node": p.node, "created_at": time.time()}
    ).encode()


async def bootstrap_admin(etcd: Etcd) -> str | None:
    """Create the first admin token, once per etcd cluster. Returns it, or None if it existed.

    The bootstrap marker is created in the same transaction, so two API servers starting
    at once cannot both mint an admin token.
    """
    token = new_token()
    txn = Txn().require_absent(keys.BOOTSTRAP, "bootstrap marker", "admin")
    txn.put(keys.BOOTSTRAP, b"admin token created")
    txn.put(keys.token(digest(token)), token_record(Principal("admin", "admin")))
    try:
        await txn.commit(etcd)
    except Exception as e:
        from controlplane.store import AlreadyExists

        if isinstance(e, AlreadyExists):
            return None
        raise
    return token


class TokenVerifier:
    def __init__(self, etcd: Etcd) -> None:
        self.etcd = etcd
        self._cache: dict[str, tuple[float, Principal | None]] = {}

    async def verify(self, token: str) -> Principal | None:
        d = digest(token)
        now = time.monotonic()
        hit = self._cache.get(d)
        if hit is not None and hit[0] > now:
            return hit[1]
        kv = await self.etcd.get(keys.token(d))
        principal = None
        if kv is not None:
            data = json.loads(kv.value)
            principal = Principal(data["name"], data["role"], data.get("cluster", ""), data.get("node", ""))
        if len(self._cache) > 10_000:
            self._cache.clear()
        self._cache[d] = (now + CACHE_TTL, principal)
        return principal

    def forget(self, token: str) -> None:
        self._cache.pop(digest(token), None)


def bearer(metadata: Any) -> str | None:
    for k, v in metadata or ():
        if k == "authorization" and isinstance(v, str) and v.startswith("Bearer "):
            return v[7:].strip()
    return None


def _denied(handler: grpc.RpcMethodHandler, message: str) -> grpc.RpcMethodHandler:
    async def unary(request: Any, context: grpc.aio.ServicerContext) -> Any:
        await context.abort(grpc.StatusCode.UNAUTHENTICATED, message)

    async def stream(request: Any, context: grpc.aio.ServicerContext) -> Any:
        await context.abort(grpc.StatusCode.UNAUTHENTICATED, message)
        yield  # pragma: no cover - makes this an async generator

    if handler.unary_stream:
        return grpc.unary_stream_rpc_method_handler(
            stream, handler.request_deserializer, handler.response_serializer
        )
    return grpc.unary_unary_rpc_method_handler(
        unary, handler.request_deserializer, handler.response_serializer
    )


class AuthInterceptor(grpc.aio.ServerInterceptor):
    def __init__(self, verifier: TokenVerifier, node_guard: NodeGuard | None = None) -> None:
        self.verifier = verifier
        self.node_guard = node_guard  # None under --insecure: nodes use bearer credentials

    async def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], Awaitable[grpc.RpcMethodHandler]],
        details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler:
        method = details.method
        handler = await continuation(details)
        if handler is None or method.startswith(PUBLIC_PREFIXES) or method in PUBLIC_METHODS:
            return handler
        if self.node_guard is not None and method.startswith(NODE_PREFIX):
            # TLS: a node call is authenticated by its node certificate, not by a token.
            return self.node_guard.wrap(handler)
        token = bearer(details.invocation_metadata)
        if not token:
            return _denied(handler, "missing bearer token (metadata 'authorization: Bearer <token>')")
        try:
            principal = await self.verifier.verify(token)
        except Exception:
            # etcd down: say so rather than claim the token is bad.
            return _unavailable(handler)
        if principal is None:
            return _denied(handler, "invalid or revoked token")
        is_node_api = method.startswith(NODE_PREFIX)
        if principal.role == "node" and not is_node_api:
            return _denied(handler, "a node credential may only call the node-agent API")
        return handler


ETCD_UNAVAILABLE_TRAILER = ((REASON_KEY, REASON_ETCD_UNAVAILABLE),)


def _unavailable(handler: grpc.RpcMethodHandler) -> grpc.RpcMethodHandler:
    """UNAVAILABLE with the etcd-unavailable reason, for unary and streaming methods alike."""
    message = "etcd is unavailable: cannot verify the token"

    async def unary(request: Any, context: grpc.aio.ServicerContext) -> Any:
        await context.abort(grpc.StatusCode.UNAVAILABLE, message, ETCD_UNAVAILABLE_TRAILER)

    async def stream(request: Any, context: grpc.aio.ServicerContext) -> Any:
        await context.abort(grpc.StatusCode.UNAVAILABLE, message, ETCD_UNAVAILABLE_TRAILER)
        yield  # pragma: no cover - makes this an async generator

    if handler.unary_stream:
        return grpc.unary_stream_rpc_method_handler(
            stream, handler.request_deserializer, handler.response_serializer
        )
    return grpc.unary_unary_rpc_method_handler(
        unary, handler.request_deserializer, handler.response_serializer
    )
