"""The gate every authenticated call of the user API passes: may this token make this call?

:class:`AccessGate` implements :class:`controlplane.auth.Gate`. Authentication
(:mod:`controlplane.auth`) found who is calling; here the handler is wrapped so that, once the
request is decoded, :func:`controlplane.access.policy.decide` checks the token's role and scope
against it. A refusal answers ``PERMISSION_DENIED`` before the servicer runs, so nothing is
written but its audit record; an admitted change runs inside :meth:`AuditLog.around`.

The caller's record is available to the servicers while the call runs (:func:`current_principal`),
so a new token can name the token that created it.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from contextvars import ContextVar
from typing import Any

import grpc

from controlplane.access.audit import AuditLog
from controlplane.access.policy import Caller, decide, rule_for
from controlplane.access.stream_gate import audited_stream, first_request
from controlplane.auth import Principal
from controlplane.request_decoding import Undecodable

CALLER: ContextVar[Principal | None] = ContextVar("ccs_caller", default=None)

Before = Callable[[Any, grpc.aio.ServicerContext], Awaitable[None]]


def current_principal() -> Principal | None:
    """The token making the current call (None outside a call admitted by the gate)."""
    return CALLER.get()


def _aborting(handler: grpc.RpcMethodHandler, code: grpc.StatusCode, message: str,
              before: Before, *, first: bool = False) -> grpc.RpcMethodHandler:
    """A handler of the same shape that runs ``before`` (the audit) and answers ``code``."""

    async def unary(request: Any, context: grpc.aio.ServicerContext) -> Any:
        await before(request, context)
        await context.abort(code, message)

    async def stream(request: Any, context: grpc.aio.ServicerContext) -> AsyncIterator[Any]:
        await before(request, context)
        await context.abort(code, message)
        yield  # pragma: no cover - makes this an async generator

    async def no_request(request: Any, context: grpc.aio.ServicerContext) -> Any:
        await context.abort(code, message)  # client streams: the ccs API has none

    async def first_then(requests: Any, context: grpc.aio.ServicerContext) -> AsyncIterator[Any]:
        # A bidirectional stream named by its first request (ContainerService/Exec): audit that.
        first = await first_request(requests)
        if first is not None:
            await before(first, context)
        await context.abort(code, message)
        yield  # pragma: no cover - makes this an async generator

    deser, ser = handler.request_deserializer, handler.response_serializer
    if handler.unary_unary:
        return grpc.unary_unary_rpc_method_handler(unary, deser, ser)
    if handler.unary_stream:
        return grpc.unary_stream_rpc_method_handler(stream, deser, ser)
    if handler.stream_unary:
        return grpc.stream_unary_rpc_method_handler(no_request, deser, ser)
    return grpc.stream_stream_rpc_method_handler(first_then if first else no_request, deser, ser)


class AccessGate:
    def __init__(self, audit: AuditLog) -> None:
        self.audit = audit

    def refuse(
        self, handler: grpc.RpcMethodHandler, method: str, message: str, principal: Principal | None
    ) -> grpc.RpcMethodHandler:
        rule = rule_for(method)
        code = grpc.StatusCode.UNAUTHENTICATED

        async def before(request: Any, context: grpc.aio.ServicerContext) -> None:
            if rule is not None and rule.mutates:
                await self.audit.refused(principal, method, request, context, code, message)

        return _aborting(handler, code, message, before,
                         first=rule is not None and rule.first_request and rule.mutates)

    def admit(self, handler: grpc.RpcMethodHandler, method: str, principal: Principal) -> grpc.RpcMethodHandler:
        rule = rule_for(method)
        caller = Caller(principal.name, principal.role, principal.clusters, principal.applications)
        audit = self.audit
        mutates = rule is None or rule.mutates  # no rule: refused below, and audited
        deser, ser = handler.request_deserializer, handler.response_serializer

        async def check(request: Any, context: grpc.aio.ServicerContext) -> None:
            if isinstance(request, Undecodable):
                # Nothing to check a scope against: the decoding layer inside refuses it,
                # naming the field (a scoped token must not get PERMISSION_DENIED for it).
                CALLER.set(principal)
                return
            why = decide(caller, method, request)
            if why is not None:
                if mutates:
                    await audit.refused(principal, method, request, context,
                                        grpc.StatusCode.PERMISSION_DENIED, why)
                await context.abort(grpc.StatusCode.PERMISSION_DENIED, why)
            CALLER.set(principal)

        if handler.unary_unary:
            inner = handler.unary_unary

            async def unary(request: Any, context: grpc.aio.ServicerContext) -> Any:
                await check(request, context)
                if not mutates:
                    return await inner(request, context)
                return await audit.around(principal, method, request, context, lambda ctx: inner(request, ctx))

            return grpc.unary_unary_rpc_method_handler(unary, deser, ser)
        if handler.unary_stream and rule is not None and not rule.mutates:
            inner_stream = handler.unary_stream

            async def stream(request: Any, context: grpc.aio.ServicerContext) -> AsyncIterator[Any]:
                await check(request, context)
                async for item in inner_stream(request, context):
                    yield item

            return grpc.unary_stream_rpc_method_handler(stream, deser, ser)

        if handler.stream_stream and rule is not None and rule.first_request:
            return audited_stream(handler, method, principal, audit, check)

        # Another streaming change, or a client stream: the API has none, so no rule admits one.
        async def nothing(request: Any, context: grpc.aio.ServicerContext) -> None:
            return None

        return _aborting(handler, grpc.StatusCode.PERMISSION_DENIED,
                         f"{method}: no access rule admits this kind of call", nothing)
