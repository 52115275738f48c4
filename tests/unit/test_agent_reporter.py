"""Status coalescing (nodeagent.reporter) and reconnect backoff bounds (nodeagent.backoff)."""

from __future__ import annotations

import asyncio
import contextlib
import random

import grpc
import pytest

from ccs.v1 import agent_pb2
from ccs.v1 import resources_pb2 as pb
from nodeagent.agent import debug_of, default_reconnect, part_of, session_part
from nodeagent.backoff import Backoff
from nodeagent.dispatcher_client import CHANNEL_OPTIONS
from nodeagent.reporter import StatusBatcher, send_loop


def upd(name: str, state: int, message: str = "") -> agent_pb2.ContainerStatusUpdate:
    return agent_pb2.ContainerStatusUpdate(
        application="shop", service="web", container=name,
        status=pb.ContainerStatus(state=state, message=message),  # type: ignore[arg-type]
    )


def test_latest_state_per_container_wins() -> None:
    b = StatusBatcher()
    for state in (pb.CONTAINER_STATE_PULLING, pb.CONTAINER_STATE_STARTING, pb.CONTAINER_STATE_RUNNING):
        b.put(upd("a", state))
    b.put(upd("b", pb.CONTAINER_STATE_RUNNING))
    batch = b.take()
    assert [(u.container, u.status.state) for u in batch] == [
        ("a", pb.CONTAINER_STATE_RUNNING), ("b", pb.CONTAINER_STATE_RUNNING)
    ]
    assert len(b) == 0


def test_batches_are_bounded() -> None:
    b = StatusBatcher(max_batch=100)
    for i in range(250):
        b.put(upd(f"c{i}", pb.CONTAINER_STATE_RUNNING))
    assert [len(b.take()) for _ in range(3)] == [100, 100, 50]


def test_unchanged_status_is_not_resent_until_reconnect() -> None:
    b = StatusBatcher()
    b.put(upd("a", pb.CONTAINER_STATE_RUNNING))
    b.mark_sent(b.take())
    assert b.put(upd("a", pb.CONTAINER_STATE_RUNNING)) is False
    assert b.put(upd("a", pb.CONTAINER_STATE_EXITED)) is True
    b.mark_sent(b.take())
    b.forget_sent()  # after a reconnect every container reports once
    assert b.put(upd("a", pb.CONTAINER_STATE_EXITED)) is True


def test_failed_batch_is_requeued_unless_superseded() -> None:
    b = StatusBatcher()
    b.put(upd("a", pb.CONTAINER_STATE_RUNNING))
    b.put(upd("b", pb.CONTAINER_STATE_RUNNING))
    failed = b.take()
    b.put(upd("a", pb.CONTAINER_STATE_EXITED))  # newer than what failed to send
    b.requeue(failed)
    assert {(u.container, u.status.state) for u in b.take()} == {
        ("a", pb.CONTAINER_STATE_EXITED), ("b", pb.CONTAINER_STATE_RUNNING)
    }


async def test_send_loop_requeues_and_raises_on_send_error() -> None:
    b = StatusBatcher()
    b.put(upd("a", pb.CONTAINER_STATE_RUNNING))

    async def broken(_: agent_pb2.UpdateStatusRequest) -> None:
        raise ConnectionError("control plane unreachable")

    with pytest.raises(ConnectionError):
        await send_loop(b, broken, linger=0)
    assert [u.container for u in b.take()] == ["a"]


@pytest.mark.parametrize("seed", range(5))
def test_backoff_stays_within_bounds(seed: int) -> None:
    bo = Backoff(base=0.5, cap=10.0, rng=random.Random(seed))
    delays = [bo.next() for _ in range(40)]
    assert all(0.25 <= d <= 10.0 for d in delays)
    assert delays[0] <= 0.5  # the first retry is quick
    assert max(delays[10:]) > 5.0  # and it grows to the cap
    bo.reset()
    assert bo.next() <= 0.5


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [({"base": 0}, "base"), ({"base": 2, "cap": 1}, "cap"), ({"factor": 0.5}, "factor")],
)
def test_backoff_rejects_bad_settings(kwargs: dict[str, float], field: str) -> None:
    with pytest.raises(ValueError, match=field):
        Backoff(**kwargs)  # type: ignore[arg-type]


@pytest.mark.parametrize("seed", range(5))
def test_the_agent_reconnects_at_most_2s_apart_however_long_the_outage(seed: int) -> None:
    """Issue 9: a control plane that comes back is found within about 2 s, not 14-25 s."""
    bo = default_reconnect()
    bo.rng = random.Random(seed)
    delays = [bo.next() for _ in range(200)]
    assert all(0.25 <= d <= 2.0 for d in delays), max(delays)
    # The channel's own reconnect attempts are capped too (grpc-core adds +-20% jitter).
    options = dict(CHANNEL_OPTIONS)
    assert options["grpc.max_reconnect_backoff_ms"] * 1.2 <= 2000
    assert options["grpc.initial_reconnect_backoff_ms"] <= options["grpc.max_reconnect_backoff_ms"]


def test_only_a_healthy_update_is_urgent_until_it_is_taken() -> None:
    b = StatusBatcher(max_batch=2)
    b.put(upd("a", pb.CONTAINER_STATE_RUNNING))
    b.put(upd("b", pb.CONTAINER_STATE_STARTING))
    assert not b.urgent  # RUNNING and STARTING keep coalescing
    b.put(upd("c", pb.CONTAINER_STATE_HEALTHY))
    assert b.urgent
    assert [u.container for u in b.take()] == ["a", "b"]
    assert b.urgent  # c is still pending
    assert [u.container for u in b.take()] == ["c"]
    assert not b.urgent


async def test_a_healthy_update_is_sent_without_waiting_for_the_linger() -> None:
    b = StatusBatcher()
    sent: list[agent_pb2.UpdateStatusRequest] = []
    got = asyncio.Event()

    async def send(req: agent_pb2.UpdateStatusRequest) -> None:
        sent.append(req)
        got.set()

    loop = asyncio.create_task(send_loop(b, send, linger=3600))  # a linger no test outlives
    b.put(upd("a", pb.CONTAINER_STATE_RUNNING))
    await asyncio.sleep(0)  # the loop is now lingering on the RUNNING update
    assert not sent
    b.put(upd("b", pb.CONTAINER_STATE_HEALTHY))
    async with asyncio.timeout(20):  # a hang guard: only the urgency can end the hour's linger
        await got.wait()
    loop.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await loop
    assert [(u.container, u.status.state) for u in sent[0].updates] == [
        ("a", pb.CONTAINER_STATE_RUNNING), ("b", pb.CONTAINER_STATE_HEALTHY)
    ]


def rpc_error(code: grpc.StatusCode) -> grpc.aio.AioRpcError:
    return grpc.aio.AioRpcError(code, grpc.aio.Metadata(), grpc.aio.Metadata(), "from the test")


async def test_a_timed_out_batch_is_sent_again_on_the_same_session() -> None:
    """A slow server is not a gone one: two timeouts in a row, then the batch goes through, and
    the loop is still running (it did not raise to end the session)."""
    b = StatusBatcher()
    b.put(upd("a", pb.CONTAINER_STATE_RUNNING))
    calls: list[list[str]] = []
    told: list[int] = []
    delivered = asyncio.Event()

    async def slow_then_fine(req: agent_pb2.UpdateStatusRequest) -> None:
        calls.append([u.container for u in req.updates])
        if len(calls) <= 2:
            raise rpc_error(grpc.StatusCode.DEADLINE_EXCEEDED)
        delivered.set()

    loop = asyncio.create_task(send_loop(b, slow_then_fine, linger=0, timeout_pause=0, on_timeout=told.append))
    async with asyncio.timeout(20):  # a hang guard
        await delivered.wait()
    assert not loop.done()
    loop.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await loop
    assert calls == [["a"], ["a"], ["a"]]
    assert told == [1, 2]
    assert len(b) == 0


async def test_timeouts_past_the_bound_end_the_session_with_the_batch_kept() -> None:
    b = StatusBatcher()
    b.put(upd("a", pb.CONTAINER_STATE_RUNNING))
    calls = 0

    async def always_slow(_: agent_pb2.UpdateStatusRequest) -> None:
        nonlocal calls
        calls += 1
        raise rpc_error(grpc.StatusCode.DEADLINE_EXCEEDED)

    with pytest.raises(grpc.aio.AioRpcError) as raised:
        await send_loop(b, always_slow, linger=0, timeout_pause=0, timeouts_kept=3)
    assert raised.value.code() is grpc.StatusCode.DEADLINE_EXCEEDED
    assert calls == 4  # the first call and three kept timeouts
    assert [u.container for u in b.take()] == ["a"]


async def test_a_success_resets_the_count_of_timeouts_in_a_row() -> None:
    b = StatusBatcher()
    outcomes = iter(["late", "ok", "late", "ok", "late", "unavailable"])
    seen: list[str] = []

    async def scripted(_: agent_pb2.UpdateStatusRequest) -> None:
        outcome = next(outcomes)
        seen.append(outcome)
        b.put(upd(f"c{len(seen)}", pb.CONTAINER_STATE_RUNNING))  # keep the loop fed
        if outcome == "late":
            raise rpc_error(grpc.StatusCode.DEADLINE_EXCEEDED)
        if outcome == "unavailable":
            raise rpc_error(grpc.StatusCode.UNAVAILABLE)

    b.put(upd("c0", pb.CONTAINER_STATE_RUNNING))
    with pytest.raises(grpc.aio.AioRpcError) as raised:
        await send_loop(b, scripted, linger=0, timeout_pause=0, timeouts_kept=1)
    # With a bound of one, each single timeout was kept because a success came between them;
    # UNAVAILABLE (the replica is gone or refuses) ends the session at once.
    assert raised.value.code() is grpc.StatusCode.UNAVAILABLE
    assert seen == ["late", "ok", "late", "ok", "late", "unavailable"]


async def test_the_part_that_ended_a_session_is_named_on_its_error() -> None:
    async def late() -> None:
        raise rpc_error(grpc.StatusCode.DEADLINE_EXCEEDED)

    with pytest.raises(grpc.aio.AioRpcError) as raised:
        await session_part("status reports", late())
    assert part_of(raised.value) == "status reports"
    assert part_of(ConnectionError("stream closed")) == "session stream"


def test_grpcs_own_account_of_a_failure_is_kept_for_the_log() -> None:
    """``debug_of``: the text gRPC gives (it says whether a status came from the server), cut to
    a log line; nothing for errors that are not gRPC's or carry none."""
    from_server = grpc.aio.AioRpcError(grpc.StatusCode.CANCELLED, grpc.aio.Metadata(), grpc.aio.Metadata(),
                                       "CANCELLED", 'Error received from peer {grpc_status:1}' + "x" * 400)
    assert debug_of(from_server).startswith("Error received from peer")
    assert len(debug_of(from_server)) == 300
    assert debug_of(rpc_error(grpc.StatusCode.UNAVAILABLE)) == ""
    assert debug_of(ConnectionError("stream closed")) == ""
