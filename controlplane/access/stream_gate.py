"""The gate for a bidirectional stream whose first request says what it acts on (``ccs exec``).

A stream's requests arrive after the call has started, so the check waits for the first one:
the policy decides on it as on a unary request (the token's role and scope against its
cluster and application), and a refusal is audited and answered ``PERMISSION_DENIED`` before
the servicer runs. An admitted exec is audited twice under one key: a record with result
``STARTED`` when it is admitted (an interactive session may last hours, and who got into a
container must be on record from the start), rewritten when it ends with the real answer:
``OK`` and ``exit code N`` (written before the client gets the exit, so a client that has it
finds the record), or the status code and message of the error, or ``CANCELLED`` when the
client went away. The record names the command (``AuditRecord.command``), never stdin or
output. The servicer gets the first request back, followed by the rest.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import grpc

from controlplane.access.audit import AuditLog, _Settling, status_of
from controlplane.auth import Principal

Check = Callable[[Any, grpc.aio.ServicerContext], Awaitable[None]]


async def first_request(requests: AsyncIterator[Any]) -> Any | None:
    """The stream's first request, or None when the client sent none."""
    return await anext(aiter(requests), None)


async def _chained(first: Any, rest: AsyncIterator[Any]) -> AsyncIterator[Any]:
    yield first
    async for item in rest:
        yield item


def audited_stream(handler: grpc.RpcMethodHandler, method: str, principal: Principal, audit: AuditLog,
                   check: Check) -> grpc.RpcMethodHandler:
    inner = handler.stream_stream

    async def bidi(requests: AsyncIterator[Any], context: grpc.aio.ServicerContext) -> AsyncIterator[Any]:
        rest = aiter(requests)
        first = await anext(rest, None)
        if first is None:
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT,
                                "the first request must name the container and the command")
        await check(first, context)  # a refusal is audited there, and aborts
        key, rec = audit.new_record(principal, method, first, context)
        rec.result = "STARTED"
        await audit.put(key, rec)
        result, message, settled = "OK", "", False

        async def settle(code: str, text: str) -> None:
            # Before the client hears the answer (the exit, or an abort's status): one who has
            # it finds the record.
            nonlocal settled
            if not settled:
                settled = True
                rec.result, rec.message = code, text
                await audit.put(key, rec)

        try:
            async for response in inner(_chained(first, rest), _Settling(context, settle)):
                if getattr(response, "exited", False):
                    await settle("OK", f"exit code {response.exit_code}")
                yield response
        except grpc.aio.AbortError:
            result, message = status_of(context)
            raise
        except asyncio.CancelledError:
            result, message = "CANCELLED", "the caller went away before the end"
            raise
        except BaseException as e:
            result, message = "UNKNOWN", type(e).__name__
            raise
        finally:
            if not settled:
                rec.result, rec.message = result, message
                await asyncio.shield(audit.put(key, rec))

    return grpc.stream_stream_rpc_method_handler(bidi, handler.request_deserializer, handler.response_serializer)
