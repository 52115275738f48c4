"""TokenService: API tokens with roles (``ccs token create|ls|revoke``).

A token is stored as the first admin token always was: its SHA-256 digest is the key
(``/ccs/tokens/{digest}``), the record beside it is JSON (:func:`controlplane.auth.token_record`),
and the secret is returned once, by ``CreateToken``. A name index (``/ccs/tokennames/{name}``)
keeps names unique among tokens not revoked, written in the same transaction as the token.

A revoked token keeps its record (marked ``revoked_at``), so a call still made with it is
refused naming the token, and its audit record says who it was; its name is free again.
Node credentials share the records but are not listed or revoked here (``ccs node rm``).
"""

from __future__ import annotations

import dataclasses
import re
import time
from collections.abc import Sequence

import grpc
from google.protobuf.timestamp_pb2 import Timestamp

from ccs.v1 import api_pb2, api_pb2_grpc
from ccs.v1 import resources_pb2 as pb
from controlplane.access.gate import current_principal
from controlplane.access.policy import Caller, allowed_calls, check_role
from controlplane.api.common import read_modify_write
from controlplane.auth import Principal, TokenVerifier, digest, new_token, parse_record, token_id, token_record
from controlplane.grpc_errors import FailedPrecondition, InvalidArgument, map_errors
from controlplane.names import check_name
from controlplane.store import Corrupt, NotFound, keys
from controlplane.store.etcd import KV, Etcd
from controlplane.store.txn import Txn

NODE_ROLE = "node"
_ID = re.compile(r"[0-9a-f]{16}")


def _ts(seconds: float) -> Timestamp | None:
    if not seconds:
        return None
    ts = Timestamp()
    ts.FromNanoseconds(int(seconds * 1e9))
    return ts


def to_proto(p: Principal) -> pb.Token:
    return pb.Token(
        meta=pb.Meta(id=p.id, name=p.name, created_at=_ts(p.created_at)),
        role=p.role, clusters=p.clusters, applications=p.applications,
        expires_at=_ts(p.expires_at), revoked_at=_ts(p.revoked_at), created_by=p.created_by,
    )


def _names(field: str, values: Sequence[str]) -> tuple[str, ...]:
    return tuple(sorted({check_name(f"{field}[{i}]", v) for i, v in enumerate(values)}))


def _parse(kv: KV) -> Principal:
    try:
        return parse_record(kv.key[len(keys.TOKENS):], kv.value)
    except (ValueError, KeyError, TypeError) as e:
        raise Corrupt({kv.key: f"{type(e).__name__}: {e}"}, "token") from e


@map_errors
class TokenServicer(api_pb2_grpc.TokenServiceServicer):
    def __init__(self, etcd: Etcd, verifier: TokenVerifier) -> None:
        self.etcd, self.verifier = etcd, verifier

    async def CreateToken(
        self, request: api_pb2.CreateTokenRequest, context: grpc.aio.ServicerContext
    ) -> api_pb2.CreateTokenResponse:
        name = check_name("name", request.name)
        clusters = _names("clusters", request.clusters)
        apps = _names("applications", request.applications)
        problem = check_role(request.role, clusters, apps)
        if problem is not None:
            raise InvalidArgument(*problem)
        if request.ttl_seconds < 0:
            raise InvalidArgument("ttl_seconds", "must not be negative (0: the token never expires)")
        secret = new_token()
        d = digest(secret)
        created = time.time()
        caller = current_principal()
        p = Principal(name, request.role, id=token_id(d), clusters=clusters, applications=apps,
                      created_at=created, expires_at=created + request.ttl_seconds if request.ttl_seconds else 0,
                      created_by=caller.name if caller is not None else "")
        txn = Txn().require_absent(keys.token_name(name), "token", name).put(keys.token_name(name), d.encode())
        txn.require_absent(keys.token(d), "token", name).put(keys.token(d), token_record(p))
        await txn.commit(self.etcd)
        return api_pb2.CreateTokenResponse(token=to_proto(p), secret=secret)

    async def _all(self) -> list[tuple[KV, Principal]]:
        res = await self.etcd.range(keys.TOKENS)
        out, bad = [], {}
        for kv in res.kvs:
            try:
                out.append((kv, _parse(kv)))
            except Corrupt as e:
                bad.update(e.bad)
        if bad:
            raise Corrupt(bad, "list of tokens")
        return out

    async def ListTokens(
        self, request: api_pb2.ListTokensRequest, context: grpc.aio.ServicerContext
    ) -> api_pb2.ListTokensResponse:
        tokens = [p for _, p in await self._all() if p.role != NODE_ROLE]
        tokens.sort(key=lambda p: (p.created_at, p.name))
        return api_pb2.ListTokensResponse(tokens=[to_proto(p) for p in tokens])

    async def WhoAmI(
        self, request: api_pb2.WhoAmIRequest, context: grpc.aio.ServicerContext
    ) -> api_pb2.WhoAmIResponse:
        """The caller's own record and what the policy admits from it there (any token: the
        gate admits every authenticated caller to this one call)."""
        cluster = check_name("cluster", request.cluster) if request.cluster else ""
        app = check_name("application", request.application) if request.application else ""
        if app and not cluster:
            raise InvalidArgument("application", "needs cluster too")
        p = current_principal()
        if p is None:  # the gate sets it for every call it admits
            raise FailedPrecondition("no authenticated caller for this call")
        caller = Caller(p.name, p.role, p.clusters, p.applications)
        return api_pb2.WhoAmIResponse(token=to_proto(p), allowed=allowed_calls(caller, cluster, app))

    async def RevokeToken(
        self, request: api_pb2.RevokeTokenRequest, context: grpc.aio.ServicerContext
    ) -> pb.Token:
        if not request.name:
            raise InvalidArgument("name", "is required (a token's name or id)")
        return await read_modify_write(0, lambda: self._revoke(request.name))

    async def _find(self, ref: str) -> KV:
        """The record of the token named ``ref`` (not revoked), or whose id is ``ref``."""
        index = await self.etcd.get(keys.token_name(ref))
        if index is not None:
            kv = await self.etcd.get(keys.token(index.value.decode()))
            if kv is not None:
                return kv
        if _ID.fullmatch(ref):
            res = await self.etcd.range(keys.token(ref))
            if len(res.kvs) == 1:
                return res.kvs[0]
        raise NotFound("token", ref)

    async def _revoke(self, ref: str) -> pb.Token:
        kv = await self._find(ref)
        p = _parse(kv)
        d = kv.key[len(keys.TOKENS):]
        if p.role == NODE_ROLE:
            raise FailedPrecondition(f"{ref!r} is the credential of node {p.node!r} of cluster {p.cluster!r}; "
                                     f"remove the node instead (ccs node rm)")
        if p.revoked_at:
            return to_proto(p)
        now = time.time()
        txn = Txn().require_revision(kv.key, "token", p.name, kv.mod_revision)
        if p.role == "admin":
            others = [(okv, o) for okv, o in await self._all()
                      if o.role == "admin" and okv.key != kv.key and o.refusal(now) is None]
            if not others:
                raise FailedPrecondition(f"token {p.name!r} is the last admin token that works; "
                                         "create another admin token before revoking it")
            for okv, o in others:  # a concurrent revoke of the others conflicts with this one
                txn.require_revision(okv.key, "token", o.name, okv.mod_revision)
        revoked = dataclasses.replace(p, revoked_at=now)
        txn.put(kv.key, token_record(revoked))
        index = await self.etcd.get(keys.token_name(p.name))
        if index is not None and index.value.decode() == d:
            txn.require_revision(index.key, "token name", p.name, index.mod_revision).delete(index.key)
        await txn.commit(self.etcd)
        self.verifier.forget_digest(d)
        return to_proto(revoked)
