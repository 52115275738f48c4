"""RPC count and latency by service, method and status code: a ``grpc.aio`` server interceptor.

Listed first among the server's interceptors, so the handler it wraps is the one the token
check and the request decoder returned: a refused call is counted with the code it was refused
with (``UNAUTHENTICATED``, ``PERMISSION_DENIED``, ``INVALID_ARGUMENT``).

The code is what the call ended with: the code set on the context (``context.abort``, or
``set_code`` without raising), else ``OK`` when the behaviour returned, ``CANCELLED`` when the
call was cancelled (a client that went away, a server stopping), ``UNKNOWN`` for any other
exception (grpc answers such a call with ``UNKNOWN``). A streaming call is timed over its whole
life and counted in ``ccs_rpc_streams_open`` while it runs.
"""

from __future__ import annotations

import asyncio
import inspect
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import grpc

from .series import ServerMetrics


def split_method(full: str) -> tuple[str, str]:
    """``/ccs.v1.NodeService/ListNodes`` -> (``ccs.v1.NodeService``, ``ListNodes``)."""
    _, _, rest = full.partition("/")
    service, _, method = rest.partition("/")
    return service, method


def _code(context: grpc.aio.ServicerContext, error: BaseException | None) -> str:
    set_code = context.code()
    if set_code is not None:
        if isinstance(set_code, grpc.StatusCode):
            return str(set_code.name)
        for status in grpc.StatusCode:  # the cython context keeps the number
            if status.value[0] == set_code:
                return str(status.name)
    if error is None:
        return "OK"
    if isinstance(error, asyncio.CancelledError | GeneratorExit):  # GeneratorExit: a stream closed early
        return "CANCELLED"
    return "UNKNOWN"


class _Call:
    """One call's measurement: start time, and (for streams) the open-streams gauge."""

    def __init__(self, metrics: ServerMetrics, service: str, method: str, stream: bool) -> None:
        self.metrics, self.service, self.method, self.stream = metrics, service, method, stream
        self.t0 = time.perf_counter()
        if stream:
            metrics.streams_open.labels(service, method).inc()

    def done(self, context: grpc.aio.ServicerContext, error: BaseException | None) -> None:
        code = _code(context, error)
        m = self.metrics
        m.rpc_handled.labels(self.service, self.method, code).inc()
        m.rpc_seconds.labels(self.service, self.method, code).observe(time.perf_counter() - self.t0)
        if self.stream:
            m.streams_open.labels(self.service, self.method).dec()


class MetricsInterceptor(grpc.aio.ServerInterceptor):
    """Count and time every call of a registered method (see the module docstring)."""

    def __init__(self, metrics: ServerMetrics) -> None:
        self.metrics = metrics

    async def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], Awaitable[grpc.RpcMethodHandler]],
        details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler:
        handler = await continuation(details)
        if handler is None:  # not a method of this server: UNIMPLEMENTED, not counted (no label growth)
            return handler
        service, method = split_method(details.method)
        return _wrapped(handler, lambda stream: _Call(self.metrics, service, method, stream))


def _wrapped(handler: grpc.RpcMethodHandler, start: Callable[[bool], _Call]) -> grpc.RpcMethodHandler:
    decode, encode = handler.request_deserializer, handler.response_serializer
    if handler.unary_unary is not None:
        return grpc.unary_unary_rpc_method_handler(_unary(handler.unary_unary, start, False), decode, encode)
    if handler.stream_unary is not None:
        return grpc.stream_unary_rpc_method_handler(_unary(handler.stream_unary, start, True), decode, encode)
    if handler.unary_stream is not None:
        return grpc.unary_stream_rpc_method_handler(_stream(handler.unary_stream, start), decode, encode)
    return grpc.stream_stream_rpc_method_handler(_stream(handler.stream_stream, start), decode, encode)


def _unary(inner: Any, start: Callable[[bool], _Call], stream: bool) -> Any:
    async def behaviour(request: Any, context: grpc.aio.ServicerContext) -> Any:
        call = start(stream)
        try:
            response = await inner(request, context)
        except BaseException as e:
            call.done(context, e)
            raise
        call.done(context, None)
        return response

    return behaviour


def _stream(inner: Any, start: Callable[[bool], _Call]) -> Any:
    if not inspect.isasyncgenfunction(inner):
        # A behaviour that writes through context.write (grpc's health Watch) is a coroutine.
        return _unary(inner, start, True)

    async def behaviour(request: Any, context: grpc.aio.ServicerContext) -> AsyncIterator[Any]:
        call = start(True)
        try:
            async for item in inner(request, context):
                yield item
        except BaseException as e:
            call.done(context, e)
            raise
        call.done(context, None)

    return behaviour
