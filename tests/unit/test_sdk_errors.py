"""The one gRPC-code -> exception table, and that calls really go through it."""

from __future__ import annotations

from collections.abc import AsyncIterator

import grpc
import grpc.aio
import pytest

import ccs
from ccs import errors
from ccs.testing import FakeApi, start_server

TABLE = [
    (grpc.StatusCode.NOT_FOUND, errors.NotFound),
    (grpc.StatusCode.ALREADY_EXISTS, errors.AlreadyExists),
    (grpc.StatusCode.INVALID_ARGUMENT, errors.InvalidArgument),
    (grpc.StatusCode.ABORTED, errors.Conflict),
    (grpc.StatusCode.FAILED_PRECONDITION, errors.FailedPrecondition),
    (grpc.StatusCode.UNAUTHENTICATED, errors.Unauthenticated),
    (grpc.StatusCode.PERMISSION_DENIED, errors.PermissionDenied),
    (grpc.StatusCode.UNAVAILABLE, errors.Unavailable),
    (grpc.StatusCode.DEADLINE_EXCEEDED, errors.DeadlineExceeded),
    (grpc.StatusCode.OUT_OF_RANGE, errors.OutOfRange),
    (grpc.StatusCode.DATA_LOSS, errors.DataLoss),
    (grpc.StatusCode.INTERNAL, errors.Internal),
    (grpc.StatusCode.UNIMPLEMENTED, errors.CcsError),
    (grpc.StatusCode.UNKNOWN, errors.CcsError),
]


def rpc_error(code: grpc.StatusCode, details: str) -> grpc.aio.AioRpcError:
    return grpc.aio.AioRpcError(code, grpc.aio.Metadata(), grpc.aio.Metadata(), details)


@pytest.mark.parametrize(("code", "cls"), TABLE, ids=[c.name for c, _ in TABLE])
def test_each_code_maps_to_its_class_and_keeps_code_and_message(
    code: grpc.StatusCode, cls: type[errors.CcsError]
) -> None:
    err = errors.from_rpc_error(rpc_error(code, "services.web.image: required"))
    assert type(err) is cls
    assert err.code is code
    assert err.message == "services.web.image: required"
    assert str(err) == "services.web.image: required"


def test_every_class_is_a_ccs_error_and_only_transient_ones_are_temporary() -> None:
    temporary = {cls for _, cls in TABLE if cls.temporary}
    assert temporary == {errors.Unavailable, errors.DeadlineExceeded}
    assert all(issubclass(cls, errors.CcsError) for _, cls in TABLE)


def exhausted(details: str, *trailers: tuple[str, str]) -> grpc.aio.AioRpcError:
    return grpc.aio.AioRpcError(grpc.StatusCode.RESOURCE_EXHAUSTED, grpc.aio.Metadata(),
                                grpc.aio.Metadata(*trailers), details)


def test_resource_exhausted_without_a_reason_is_the_size_limit_with_its_hint() -> None:
    err = errors.from_rpc_error(exhausted("Received message larger than max (5000000 vs. 4194304)"))
    assert type(err) is errors.MessageTooLarge and err.code is grpc.StatusCode.RESOURCE_EXHAUSTED
    assert err.message.endswith("ccs requests are at most 4 MiB and answers at most 64 MiB (ccs.message_size)")
    assert not err.temporary


def test_resource_exhausted_with_the_rate_limited_reason_is_rate_limited_with_its_wait() -> None:
    """It was MessageTooLarge with the 4 MiB hint, whatever the server's reason."""
    err = errors.from_rpc_error(exhausted("trigger shop/ci: more than 1 calls a second (bursts of 10)",
                                          (errors.REASON_KEY, errors.REASON_RATE_LIMITED),
                                          (errors.RETRY_AFTER_KEY, "0.7")))
    assert type(err) is errors.RateLimited and isinstance(err, errors.ResourceExhausted)
    assert err.code is grpc.StatusCode.RESOURCE_EXHAUSTED and err.temporary and err.retry_after == 0.7
    assert err.message == "trigger shop/ci: more than 1 calls a second (bursts of 10); retry in 0.7s"
    bad = errors.from_rpc_error(exhausted("slow down", (errors.REASON_KEY, errors.REASON_RATE_LIMITED),
                                          (errors.RETRY_AFTER_KEY, "soon")))
    assert type(bad) is errors.RateLimited and bad.retry_after == 0.0 and bad.message == "slow down"


def test_an_sdk_raised_rate_limit_carries_its_code() -> None:
    assert errors.RateLimited("x").code is grpc.StatusCode.RESOURCE_EXHAUSTED
    assert errors.MessageTooLarge("x").code is grpc.StatusCode.RESOURCE_EXHAUSTED


def test_empty_details_fall_back_to_the_code_name() -> None:
    assert errors.from_rpc_error(rpc_error(grpc.StatusCode.NOT_FOUND, "")).message == "not found"


@pytest.fixture
async def fake_address() -> AsyncIterator[str]:
    server, address = await start_server(FakeApi(token="s3cret"))
    yield address
    await server.stop(None)


async def test_server_status_arrives_as_the_mapped_exception(fake_address: str) -> None:
    async with ccs.AsyncClient(fake_address, "s3cret", tls=False) as client:
        with pytest.raises(ccs.NotFound, match="cluster 'nope' not found") as info:
            await client.clusters.get("nope")
    assert info.value.code is grpc.StatusCode.NOT_FOUND


async def test_wrong_token_is_unauthenticated(fake_address: str) -> None:
    async with ccs.AsyncClient(fake_address, "wrong", tls=False) as client:
        with pytest.raises(ccs.Unauthenticated):
            await client.clusters.list()


async def test_unreachable_server_is_unavailable() -> None:
    async with ccs.AsyncClient("127.0.0.1:1", "t", tls=False, timeout=5) as client:
        with pytest.raises(ccs.Unavailable):
            await client.clusters.list()


def test_an_error_the_sdk_raises_itself_carries_its_code() -> None:
    assert errors.InvalidArgument("weight: 150 is not a percentage (0-100)").code == grpc.StatusCode.INVALID_ARGUMENT
    assert errors.EtcdUnavailable("x").code == grpc.StatusCode.UNAVAILABLE
    assert errors.CcsError("x").code == grpc.StatusCode.UNKNOWN


async def test_the_fake_answers_as_a_server_whose_etcd_is_down() -> None:
    fake = FakeApi(token=None)
    server, address = await start_server(fake)
    try:
        async with ccs.AsyncClient(address, tls=False) as client:
            fake.etcd_unavailable = True
            with pytest.raises(ccs.EtcdUnavailable, match="etcd is unavailable") as info:
                await client.clusters.list()
            assert info.value.temporary
    finally:
        await server.stop(None)
