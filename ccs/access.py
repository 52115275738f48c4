"""API tokens and the audit log (``client.tokens``, ``client.audit``); both need an admin token,
but ``tokens.whoami`` (any token: what the calling token is and which calls it may make).

- ``tokens.create`` returns the new token's record and its secret, the one time the secret is
  ever sent (only its digest is stored). ``NewToken`` keeps the secret out of its ``repr``, so a
  log line that prints the result does not leak it.
- ``audit.watch`` follows new audit records as ``events.watch`` follows a cluster: pinned to a
  revision first, reconnecting from the last revision received + 1 on ``UNAVAILABLE``, so no
  record is missed or repeated; ``OutOfRange`` (compacted) means list again.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import AsyncGenerator, Iterable
from dataclasses import dataclass, field

from ccs._transport import Listing, Transport, collect
from ccs.cancellation import raise_if_cancelled
from ccs.durations import parse_seconds
from ccs.errors import Unavailable
from ccs.v1 import api_pb2, resources_pb2

__all__ = ["Audit", "NewToken", "Tokens"]


@dataclass(frozen=True)
class NewToken:
    """A token just created: its record, and the bearer secret (shown once; not in ``repr``)."""

    token: resources_pb2.Token
    secret: str = field(repr=False)


class Tokens:
    """API tokens with roles: admin, deployer (deploy, update, release, scale, logs), viewer (read)."""

    def __init__(self, transport: Transport) -> None:
        self._t = transport

    async def create(
        self, name: str, *, role: str, clusters: Iterable[str] = (), applications: Iterable[str] = (),
        ttl: float | str = 0,
    ) -> NewToken:
        """Create a token; ``clusters``/``applications`` limit its role's scoped permissions,
        ``ttl`` is its lifetime (seconds, or a duration like ``30d``; 0: never expires)."""
        seconds = parse_seconds(ttl) if isinstance(ttl, str) else float(ttl)
        if seconds < 0 or (0 < seconds < 1):
            raise ValueError(f"ttl: must be 0 (never expires) or at least 1s, got {ttl!r}")
        req = api_pb2.CreateTokenRequest(name=name, role=role, clusters=list(clusters),
                                         applications=list(applications), ttl_seconds=round(seconds))
        resp = await self._t.unary(self._t.tokens.CreateToken, req, api_pb2.CreateTokenResponse)
        return NewToken(resp.token, resp.secret)

    async def list(self) -> list[resources_pb2.Token]:
        """Every API token (revoked and expired ones too; node credentials are not tokens here)."""
        resp = await self._t.unary(self._t.tokens.ListTokens, api_pb2.ListTokensRequest(),
                                   api_pb2.ListTokensResponse)
        return list(resp.tokens)

    async def revoke(self, name: str) -> resources_pb2.Token:
        """Revoke the token named ``name`` (or whose id is ``name``)."""
        req = api_pb2.RevokeTokenRequest(name=name)
        return await self._t.unary(self._t.tokens.RevokeToken, req, resources_pb2.Token)

    async def whoami(self, cluster: str = "", application: str = "") -> api_pb2.WhoAmIResponse:
        """The calling token (``.token``: name, role, scope; no secret) and ``.allowed``: the
        calls (``"ReleaseService/ShiftTraffic"``) the server's access policy admits from it on
        ``cluster`` and ``application`` (empty: on any one application it may act on). Any
        token may ask; each real call is still decided by the policy."""
        req = api_pb2.WhoAmIRequest(cluster=cluster, application=application)
        return await self._t.unary(self._t.tokens.WhoAmI, req, api_pb2.WhoAmIResponse)


class Audit:
    """The audit log: every call that changed, or tried to change, the control plane's state."""

    def __init__(self, transport: Transport) -> None:
        self._t = transport

    async def list(self, *, since: float = 0.0, page_size: int = 0) -> Listing[resources_pb2.AuditRecord]:
        """Records from ``since`` (Unix seconds; 0: all kept), oldest first."""
        async def page(token: str) -> api_pb2.ListAuditResponse:
            req = api_pb2.ListAuditRequest(since=since, page_size=page_size, page_token=token)
            return await self._t.unary(self._t.audit.ListAudit, req, api_pb2.ListAuditResponse)

        return await collect(page, lambda r: r.records)

    async def current_revision(self) -> int:
        """The etcd revision a one-record list of the audit log was read at."""
        req = api_pb2.ListAuditRequest(page_size=1)
        resp = await self._t.unary(self._t.audit.ListAudit, req, api_pb2.ListAuditResponse)
        return resp.revision

    async def watch(
        self, from_revision: int = 0, *, max_retries: int | None = None, retry_initial: float = 0.2,
        retry_max: float = 5.0,
    ) -> AsyncGenerator[api_pb2.WatchAuditResponse, None]:
        """Yield one ``WatchAuditResponse`` per revision with new records, from ``from_revision``
        (0: from now), reconnecting transparently (``max_retries`` as in ``events.watch``)."""
        if from_revision <= 0:
            from_revision = await self.current_revision() + 1
        next_rev, failures = from_revision, 0
        while True:
            req = api_pb2.WatchAuditRequest(from_revision=next_rev)
            try:
                async for resp in self._t.stream(self._t.audit.WatchAudit, req, api_pb2.WatchAuditResponse):
                    if resp.revision < next_rev:
                        continue
                    next_rev, failures = resp.revision + 1, 0
                    yield resp
            except Unavailable:
                if max_retries is not None and failures >= max_retries:
                    raise
            raise_if_cancelled()
            failures += 1
            await asyncio.sleep(random.uniform(0, min(retry_max, retry_initial * 2**failures)))
