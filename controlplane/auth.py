"""Authentication for every RPC: who is calling.

Tokens are random 256-bit strings; etcd stores only their SHA-256 digest, so a leaked
etcd snapshot does not leak credentials. A token's id is the first 16 hex digits of that
digest: it names the token in audit records and ``ccs token revoke`` and reveals nothing of it.

Verified digests are cached so a busy client, or a node agent heartbeating every few seconds
under ``--insecure``, does not cost an etcd read per call. A watch on the token records drops a
changed token from the cache as soon as the change arrives (revocation on another replica), and
the replica that revokes drops it at once; a record read while any token record changed is not
kept (it may be the stale one). While that watch runs an entry lives ``FOLLOWED_TTL``, a safety
net only (it was ``CACHE_TTL``, the heartbeat period, so every heartbeat read its token again);
while it is down the cache is cleared and entries live ``CACHE_TTL``, so a revoked token still
stops working within ``CACHE_TTL``. Expiry is checked on every call against the cached record.

No token, an unknown, expired or revoked one: ``UNAUTHENTICATED``. What an authenticated
token may do (its role and scope) is decided and audited by :mod:`controlplane.access`, through
the ``Gate`` this interceptor hands every call to: authentication here, authorization there.
``node`` credentials (issued at agent registration) may call only the Dispatcher, which
checks them itself. Health checks, reflection and agent registration (which carries a join
token in its body) need no token.

Node calls under TLS (the default) carry no token: the node is who its certificate says,
checked by :class:`controlplane.pki.node_auth.NodeGuard` (mutual TLS, revocation). Bearer
node credentials remain for servers started with ``--insecure``.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import secrets
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Protocol

import grpc
import structlog

from ccs.errors import REASON_ETCD_UNAVAILABLE, REASON_KEY
from controlplane.pki.node_auth import NodeGuard
from controlplane.store import AlreadyExists, keys
from controlplane.store.etcd import Etcd, WatchedChange
from controlplane.store.follow import follow_prefix
from controlplane.store.txn import Txn

log = structlog.get_logger("ccs.auth")

CACHE_TTL = 5.0  # while the watch on token records is down
FOLLOWED_TTL = 600.0  # while it runs: changes drop entries at once, this is only a safety net
PUBLIC_PREFIXES = ("/grpc.health.v1.Health/", "/grpc.reflection.")
PUBLIC_METHODS = ("/ccs.v1.Dispatcher/Register",)
NODE_PREFIX = "/ccs.v1.Dispatcher/"


@dataclass(frozen=True)
class Principal:
    """A token's stored record: a user token (a role of controlplane.access.policy) or a node credential."""

    name: str
    role: str  # "admin" | "deployer" | "viewer" | ... | "node"
    cluster: str = ""  # node credentials: the node's cluster and name
    node: str = ""
    id: str = ""  # the first 16 hex digits of the token's digest
    clusters: tuple[str, ...] = ()  # scope (user tokens); empty: all
    applications: tuple[str, ...] = ()
    created_at: float = 0.0  # unix seconds
    expires_at: float = 0.0  # 0: never
    revoked_at: float = 0.0  # 0: not revoked
    created_by: str = ""

    def refusal(self, now: float) -> str | None:
        """Why this token does not authenticate at ``now`` (revoked, expired), or None."""
        if self.revoked_at:
            return f"token {self.name!r} (id {self.id}) was revoked"
        if self.expires_at and now >= self.expires_at:
            when = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(self.expires_at))
            return f"token {self.name!r} (id {self.id}) expired at {when}"
        return None


def digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def token_id(token_digest: str) -> str:
    return token_digest[:16]


def new_token(prefix: str = "ccs") -> str:
    return f"{prefix}_{secrets.token_urlsafe(32)}"


def token_record(p: Principal) -> bytes:
    """The JSON stored at ``/ccs/tokens/{digest}`` (the id is the key's, not stored)."""
    data: dict[str, Any] = {"name": p.name, "role": p.role, "cluster": p.cluster, "node": p.node,
                            "created_at": p.created_at or time.time()}
    if p.clusters:
        data["clusters"] = list(p.clusters)
    if p.applications:
        data["applications"] = list(p.applications)
    for attr in ("expires_at", "revoked_at"):
        if getattr(p, attr):
            data[attr] = getattr(p, attr)
    if p.created_by:
        data["created_by"] = p.created_by
    return json.dumps(data).encode()


def parse_record(token_digest: str, raw: bytes) -> Principal:
    """A stored token record; records written before roles (name, role, cluster, node) still parse."""
    data = json.loads(raw)
    return Principal(
        str(data["name"]), str(data["role"]), str(data.get("cluster", "")), str(data.get("node", "")),
        id=token_id(token_digest),
        clusters=tuple(data.get("clusters", ())), applications=tuple(data.get("applications", ())),
        created_at=float(data.get("created_at", 0)), expires_at=float(data.get("expires_at", 0)),
        revoked_at=float(data.get("revoked_at", 0)), created_by=str(data.get("created_by", "")),
    )


async def bootstrap_admin(etcd: Etcd) -> str | None:
    """Create the first admin token, once per etcd cluster. Returns it, or None if it existed.

    The bootstrap marker is created in the same transaction, so two API servers starting
    at once cannot both mint an admin token.
    """
    token = new_token()
    d = digest(token)
    txn = Txn().require_absent(keys.BOOTSTRAP, "bootstrap marker", "admin")
    txn.put(keys.BOOTSTRAP, b"admin token created")
    txn.put(keys.token(d), token_record(Principal("admin", "admin")))
    txn.require_absent(keys.token_name("admin"), "token", "admin").put(keys.token_name("admin"), d.encode())
    try:
        await txn.commit(etcd)
    except AlreadyExists:
        await _index_bootstrap_admin(etcd)
        return None
    return token


async def _index_bootstrap_admin(etcd: Etcd) -> None:
    """A store bootstrapped before token names were indexed: reserve the first admin token's
    name, so ``ccs token create admin`` cannot make a second token of that name."""
    if await etcd.get(keys.token_name("admin")) is not None:
        return
    for kv in (await etcd.range(keys.TOKENS)).kvs:
        d = kv.key[len(keys.TOKENS):]
        try:
            p = parse_record(d, kv.value)
        except (ValueError, KeyError, TypeError):
            continue
        if p.name == "admin" and p.role == "admin" and not p.revoked_at:
            txn = Txn().require_absent(keys.token_name("admin"), "token", "admin")
            txn.put(keys.token_name("admin"), d.encode())
            with contextlib.suppress(AlreadyExists):
                await txn.commit(etcd)
            return


class TokenVerifier:
    """Token records, read from etcd and kept (see the module docstring for how long).

    ``reads`` counts the records read from etcd (tests: a heartbeat every period must not cost a
    read each). ``clock``: monotonic seconds (tests stop it)."""

    def __init__(self, etcd: Etcd, clock: Callable[[], float] = time.monotonic) -> None:
        self.etcd = etcd
        self._clock = clock
        self._cache: dict[str, tuple[float, Principal | None]] = {}
        self._live = False  # the watch runs: an entry lives FOLLOWED_TTL (else CACHE_TTL)
        self._generation = 0  # bumped when a token record changes or the watch starts or stops
        self.reads = 0

    async def verify(self, token: str) -> Principal | None:
        """The token's record (revoked and expired ones too: the caller decides), or None."""
        d = digest(token)
        now = self._clock()
        hit = self._cache.get(d)
        if hit is not None and hit[0] > now:
            return hit[1]
        generation = self._generation
        kv = await self.etcd.get(keys.token(d))
        self.reads += 1
        principal = None
        if kv is not None:
            try:
                principal = parse_record(d, kv.value)
            except (ValueError, KeyError, TypeError) as e:  # refused as unknown, and named for the operator
                log.warning("token record does not decode", key=kv.key, error=f"{type(e).__name__}: {e}")
        if generation != self._generation:
            return principal  # a record changed while this one was read: it may be the one; not kept
        if len(self._cache) > 10_000:
            self._cache.clear()
        self._cache[d] = (now + (FOLLOWED_TTL if self._live else CACHE_TTL), principal)
        return principal

    def forget(self, token: str) -> None:
        self.forget_digest(digest(token))

    def forget_digest(self, token_digest: str) -> None:
        self._cache.pop(token_digest, None)
        self._generation += 1

    async def follow_changes(self, retry: float = 1.0) -> None:
        """Drop a token from the cache when its record changes (revoked on another replica).

        Runs until cancelled. While the watch is down nothing is kept long: the cache is
        cleared when it breaks and when it starts again, and entries made meanwhile live
        ``CACHE_TTL``.
        """
        def forget(batch: list[WatchedChange]) -> None:
            for change in batch:
                self.forget_digest(change.kv.key[len(keys.TOKENS):])

        await follow_prefix(self.etcd, keys.TOKENS, on_start=lambda _: self._following(True), on_batch=forget,
                            on_break=lambda: self._following(False), retry=retry)

    def _following(self, live: bool) -> None:
        self._cache.clear()
        self._generation += 1
        self._live = live

    @property
    def following(self) -> bool:
        """The watch runs (entries are kept ``FOLLOWED_TTL``)."""
        return self._live


def bearer(metadata: Any) -> str | None:
    for k, v in metadata or ():
        if k == "authorization" and isinstance(v, str) and v.startswith("Bearer "):
            return v[7:].strip()
    return None


class Gate(Protocol):
    """Authorization and audit (:class:`controlplane.access.gate.AccessGate`): what happens to a
    call once authentication has said who is calling, or that nobody known is."""

    def admit(self, handler: grpc.RpcMethodHandler, method: str, principal: Principal) -> grpc.RpcMethodHandler:
        """The handler, wrapped to check the token's role and scope and to audit a change."""
        ...

    def refuse(
        self, handler: grpc.RpcMethodHandler, method: str, message: str, principal: Principal | None
    ) -> grpc.RpcMethodHandler:
        """A handler that answers UNAUTHENTICATED with ``message`` (audited if the call changes state)."""
        ...


class AuthInterceptor(grpc.aio.ServerInterceptor):
    def __init__(self, verifier: TokenVerifier, gate: Gate, node_guard: NodeGuard | None = None) -> None:
        self.verifier = verifier
        self.gate = gate
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
            return self.gate.refuse(
                handler, method, "missing bearer token (metadata 'authorization: Bearer <token>')", None)
        try:
            principal = await self.verifier.verify(token)
        except Exception:
            # etcd down: say so rather than claim the token is bad.
            return _unavailable(handler)
        if principal is None:
            return self.gate.refuse(handler, method, "invalid or revoked token", None)
        if (why := principal.refusal(time.time())) is not None:
            return self.gate.refuse(handler, method, why, principal)
        if method.startswith(NODE_PREFIX):
            return handler  # the Dispatcher requires a node credential itself
        if principal.role == "node":
            return self.gate.refuse(handler, method, "a node credential may only call the node-agent API", principal)
        return self.gate.admit(handler, method, principal)


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
