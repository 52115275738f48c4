"""The audit log: one record per call that changes, or tries to change, the control plane's state.

A record says who (the token's name, role and id, never its secret), what (the RPC and the
object it names), from where (the peer address), and the answer (OK or the status code, with
the message). Records live in etcd under ``/ccs/audit/`` (keys sortable by time) and are pruned
after ``--audit-retention`` (``controlplane.janitor``).

**Where the record is written, and why.** An admitted change puts its record in the *same
etcd transaction* as the change (the store's rider, :data:`controlplane.store.txn.RIDER`):
the first transaction of the call that commits carries the record, saying OK. So a change that
landed can never lose its record (not to a crash, not to an etcd outage in between), and a call
whose transaction did not commit leaves no record claiming it did. After the call, the answer is
checked against what the rider did:

- the rider landed and the call answered OK: nothing more to write (one write in all);
- the rider landed but the call then failed (a later step refused): the record is rewritten with
  the real answer, keeping ``wrote`` and the revision, so it shows a partial change honestly;
- nothing committed (refused, invalid, a no-op, a dry run): the record is written right after,
  with the answer. Losing this write (etcd down, a crash) loses the record of a call that
  changed nothing.

An audit write that fails never changes the call's answer; it is logged (without the request).

Refusals are audited too: ``PERMISSION_DENIED`` always (the caller is a known token), and
``UNAUTHENTICATED`` through a token bucket per server (``ANONYMOUS_RATE`` a second, bursts of
``ANONYMOUS_BURST``), since a caller without a valid token could otherwise fill etcd with records;
the ones skipped are counted in a warning log line.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import grpc
import structlog

from ccs.v1 import api_pb2
from ccs.v1 import resources_pb2 as pb
from controlplane.access.policy import rule_for, short_method, target
from controlplane.auth import Principal
from controlplane.store import keys
from controlplane.store.codec import encode
from controlplane.store.etcd import Etcd
from controlplane.store.events import event_id
from controlplane.store.meta import now
from controlplane.store.txn import RIDER, Rider, Txn

log = structlog.get_logger("ccs.audit")

T = TypeVar("T")

ANONYMOUS_RATE = 10.0
ANONYMOUS_BURST = 100.0
MAX_MESSAGE = 1000
#: The object a record names is cut to this: a request may carry a name of megabytes (it is then
#: refused), and a record must stay small, or a listing or watch of the log would outgrow a
#: message (the API fuzz test found both: a 10,000-record page and a watch batch over 64 MiB).
MAX_TARGET = 300


class TokenBucket:
    """``rate`` tokens a second, at most ``burst`` saved up; ``clock`` is an argument for tests."""

    def __init__(self, rate: float, burst: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.rate, self.burst, self.clock = rate, burst, clock
        self.tokens, self.at = burst, clock()
        self.dropped = 0

    def take(self) -> bool:
        t = self.clock()
        self.tokens = min(self.burst, self.tokens + (t - self.at) * self.rate)
        self.at = t
        if self.tokens >= 1:
            self.tokens -= 1
            return True
        self.dropped += 1
        return False


def status_of(context: grpc.aio.ServicerContext) -> tuple[str, str]:
    """The status a handler aborted with: (code name, message)."""
    code: Any = context.code()
    if isinstance(code, grpc.StatusCode):
        name = code.name
    else:
        name = next((c.name for c in grpc.StatusCode if c.value[0] == code), "UNKNOWN")
    details = context.details()
    message = details.decode(errors="replace") if isinstance(details, bytes) else str(details or "")
    return name, message


class _Settling:
    """A servicer context whose ``abort`` first settles the call's audit record."""

    def __init__(self, context: grpc.aio.ServicerContext,
                 settle: Callable[[str, str], Awaitable[None]]) -> None:
        self._context, self._settle = context, settle

    def __getattr__(self, name: str) -> Any:
        return getattr(self._context, name)

    async def abort(self, code: grpc.StatusCode, details: str = "", trailing_metadata: Any = ()) -> None:
        await self._settle(code.name, details)
        await self._context.abort(code, details, trailing_metadata)


class AuditLog:
    """Writes audit records for the gate (:mod:`controlplane.access.gate`)."""

    def __init__(self, etcd: Etcd, *, anonymous: TokenBucket | None = None) -> None:
        self.etcd = etcd
        self.anonymous = anonymous or TokenBucket(ANONYMOUS_RATE, ANONYMOUS_BURST)
        self._dropped_logged = 0

    @staticmethod
    def new_record(
        principal: Principal | None, method: str, request: object, context: grpc.aio.ServicerContext
    ) -> tuple[str, pb.AuditRecord]:
        rid = event_id()
        rule = rule_for(method)
        rec = pb.AuditRecord(
            meta=pb.Meta(id=rid, name=rid, created_at=now()),
            method=short_method(method),
            target=_cut(target(rule, request), MAX_TARGET) if rule is not None else "",
            peer=_cut(str(context.peer() or ""), MAX_TARGET),
        )
        if principal is not None:
            rec.token_name, rec.token_id, rec.role = principal.name, principal.id, principal.role
        if isinstance(request, api_pb2.ExecRequest):  # what ran, never its input or output
            rec.command.extend(_command(request.command))
        return keys.audit(rid), rec

    async def refused(
        self, principal: Principal | None, method: str, request: object, context: grpc.aio.ServicerContext,
        code: grpc.StatusCode, message: str,
    ) -> None:
        """Record a refused call (nothing was written for it)."""
        if code == grpc.StatusCode.UNAUTHENTICATED and not self.anonymous.take():
            if self.anonymous.dropped - self._dropped_logged >= 100 or not self._dropped_logged:
                log.warning("unauthenticated calls not audited (rate limit)", dropped=self.anonymous.dropped)
                self._dropped_logged = self.anonymous.dropped
            return
        key, rec = self.new_record(principal, method, request, context)
        rec.result, rec.message = code.name, _cut(message, MAX_MESSAGE)
        await self._put(key, rec)

    async def around(
        self, principal: Principal, method: str, request: object, context: grpc.aio.ServicerContext,
        call: Callable[[grpc.aio.ServicerContext], Awaitable[T]],
    ) -> T:
        """Run an admitted change with its record riding on its first transaction (module doc).

        The servicer gets a context whose ``abort`` settles the record first: grpc sends the
        status as soon as ``abort`` is called, and a client that has its answer must find the
        record that goes with it.
        """
        key, rec = self.new_record(principal, method, request, context)
        landed = pb.AuditRecord()
        landed.CopyFrom(rec)
        landed.result, landed.wrote = "OK", True
        rider = Rider.put(key, encode(landed))
        settled = False

        async def settle(result: str, message: str) -> None:
            nonlocal settled
            if settled:
                return
            settled = True
            RIDER.reset(reset)
            rider.closed = True
            if not (rider.attached and result == "OK"):
                rec.result, rec.message = result, _cut(message, MAX_MESSAGE)
                rec.wrote, rec.revision = bool(rider.revision), rider.revision
                await self._put(key, rec)

        reset = RIDER.set(rider)
        try:
            answer = await call(_Settling(context, settle))
        except grpc.aio.AbortError:
            await settle(*status_of(context))
            raise
        except asyncio.CancelledError:
            await settle("CANCELLED", "the caller went away before the answer")
            raise
        except BaseException as e:
            await settle("UNKNOWN", type(e).__name__)
            raise
        await settle("OK", "")
        return answer

    async def put(self, key: str, rec: pb.AuditRecord) -> None:
        """Write (or rewrite) a record; a failure is logged, never raised."""
        await self._put(key, rec)

    async def _put(self, key: str, rec: pb.AuditRecord) -> None:
        try:
            await Txn().put(key, rec).commit(self.etcd)
        except Exception as e:  # never change the call's answer; say what was lost
            log.error("audit record not written", error=str(e), method=rec.method, target=rec.target,
                      token=rec.token_name, token_id=rec.token_id, result=rec.result)


def _command(words: Any) -> list[str]:
    """A command for the record, bounded like its target: at most 20 words of MAX_TARGET."""
    out = [_cut(str(w), MAX_TARGET) for w in list(words)[:20]]
    if len(words) > 20:
        out.append(f"... ({len(words)} words)")
    return out


def _cut(text: str, limit: int) -> str:
    """``text`` cut to ``limit`` characters, saying so."""
    if len(text) <= limit:
        return text
    suffix = f"... ({len(text)} chars)"
    return text[: max(0, limit - len(suffix))] + suffix
