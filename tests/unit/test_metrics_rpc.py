"""The RPC interceptor counts every call by service, method and the code it ended with.

A real ``grpc.aio`` server on loopback (no etcd): the standard health service (a unary method
that aborts with NOT_FOUND for an unknown service, a stream that writes through
``context.write``) and a small generic service whose stream is an async generator, as ccs's are.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import grpc
import pytest
from grpc_health.v1 import health, health_pb2, health_pb2_grpc

from controlplane.metrics import MetricsInterceptor, ServerMetrics
from controlplane.metrics.rpc import split_method

HEALTH = "grpc.health.v1.Health"


def value(m: ServerMetrics, name: str, **labels: str) -> float:
    got = m.registry.get_sample_value(name, labels)
    return 0.0 if got is None else got


async def _ticks(request: bytes, context: grpc.aio.ServicerContext) -> AsyncIterator[bytes]:
    for i in range(1000):
        yield bytes([i % 256])
        await asyncio.sleep(0.01)


async def _fails(request: bytes, context: grpc.aio.ServicerContext) -> bytes:
    raise RuntimeError("a servicer bug")


def _generic() -> grpc.GenericRpcHandler:
    return grpc.method_handlers_generic_handler("test.Ticks", {
        "Tick": grpc.unary_stream_rpc_method_handler(_ticks),
        "Fail": grpc.unary_unary_rpc_method_handler(_fails),
    })


@pytest.fixture
async def served() -> AsyncIterator[tuple[ServerMetrics, grpc.aio.Channel]]:
    metrics = ServerMetrics()
    server = grpc.aio.server(interceptors=[MetricsInterceptor(metrics)])
    servicer = health.aio.HealthServicer()
    await servicer.set("", health_pb2.HealthCheckResponse.SERVING)
    health_pb2_grpc.add_HealthServicer_to_server(servicer, server)
    server.add_generic_rpc_handlers([_generic()])
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    channel = grpc.aio.insecure_channel(f"127.0.0.1:{port}")
    yield metrics, channel
    await channel.close()
    await server.stop(None)


def test_split_method() -> None:
    assert split_method("/ccs.v1.NodeService/ListNodes") == ("ccs.v1.NodeService", "ListNodes")


async def test_unary_calls_are_counted_by_code(served: tuple[ServerMetrics, grpc.aio.Channel]) -> None:
    metrics, channel = served
    stub = health_pb2_grpc.HealthStub(channel)
    await stub.Check(health_pb2.HealthCheckRequest())
    await stub.Check(health_pb2.HealthCheckRequest())
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await stub.Check(health_pb2.HealthCheckRequest(service="nope"))
    assert err.value.code() == grpc.StatusCode.NOT_FOUND
    ok = {"service": HEALTH, "method": "Check", "code": "OK"}
    assert value(metrics, "ccs_rpc_handled_total", **ok) == 2
    assert value(metrics, "ccs_rpc_handled_total", service=HEALTH, method="Check", code="NOT_FOUND") == 1
    assert value(metrics, "ccs_rpc_handling_seconds_count", **ok) == 2
    assert value(metrics, "ccs_rpc_handling_seconds_sum", **ok) > 0


async def test_an_exception_is_unknown(served: tuple[ServerMetrics, grpc.aio.Channel]) -> None:
    metrics, channel = served
    fail = channel.unary_unary("/test.Ticks/Fail")
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await fail(b"")
    assert err.value.code() == grpc.StatusCode.UNKNOWN
    assert value(metrics, "ccs_rpc_handled_total", service="test.Ticks", method="Fail", code="UNKNOWN") == 1


async def test_an_unknown_method_is_not_counted(served: tuple[ServerMetrics, grpc.aio.Channel]) -> None:
    metrics, channel = served
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await channel.unary_unary("/test.Ticks/Nope")(b"")
    assert err.value.code() == grpc.StatusCode.UNIMPLEMENTED
    names = {s.labels.get("method") for fam in metrics.registry.collect() for s in fam.samples}
    assert "Nope" not in names


@pytest.mark.parametrize(("method", "request_bytes"), [
    ("/test.Ticks/Tick", b""),  # an async generator
    (f"/{HEALTH}/Watch", health_pb2.HealthCheckRequest().SerializeToString()),  # writes via context.write
])
async def test_an_open_stream_is_counted_until_it_ends(
    served: tuple[ServerMetrics, grpc.aio.Channel], method: str, request_bytes: bytes
) -> None:
    metrics, channel = served
    service, name = split_method(method)
    call: Any = channel.unary_stream(method)(request_bytes)
    await call.read()  # the first message: the stream is open on the server
    assert value(metrics, "ccs_rpc_streams_open", service=service, method=name) == 1
    call.cancel()
    # The server learns of the cancellation asynchronously; wait for the count (no timing asserted).
    for _ in range(500):
        if value(metrics, "ccs_rpc_handled_total", service=service, method=name, code="CANCELLED") == 1:
            break
        await asyncio.sleep(0.01)
    assert value(metrics, "ccs_rpc_handled_total", service=service, method=name, code="CANCELLED") == 1
    assert value(metrics, "ccs_rpc_streams_open", service=service, method=name) == 0
