"""``ContainerService.Logs`` for a client that does not read: the server buffers a bounded
backlog and then ends the call with FAILED_PRECONDITION (the CLI's exit 5) naming the reason,
instead of buffering the agent's lines without end (before: the relay's inbox was unbounded).

The servicer runs on a real etcd (its own: the session's ccs-server would reconcile the seeded
container away); the agent is this test's end of the broker's channel, so the client's not
reading is made to happen, not hoped for: the generator is simply not advanced."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Iterator
from typing import Any, cast

import grpc
import pytest

from ccs.v1 import agent_pb2, api_pb2
from ccs.v1 import resources_pb2 as pb
from controlplane.api.services import ContainerServicer
from controlplane.dispatcher.logs_relay import CHUNK_OVERHEAD, LOGS_BACKLOG_BYTES, LogBroker
from controlplane.informer import Informer
from controlplane.store import keys
from controlplane.store.etcd import Etcd
from controlplane.store.txn import Txn
from tests.conftest import EtcdProc, start_etcd

pytestmark = pytest.mark.etcd


class Aborted(Exception):
    def __init__(self, code: grpc.StatusCode, message: str) -> None:
        super().__init__(code, message)
        self.code, self.message = code, message


class Context:
    async def abort(self, code: grpc.StatusCode, message: str, *_: Any) -> None:
        raise Aborted(code, message)


@pytest.fixture(scope="module")
def own_etcd(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EtcdProc]:
    proc = start_etcd(tmp_path_factory.mktemp("logs-backlog-etcd"))
    yield proc
    proc.stop()


async def test_a_logs_client_that_does_not_read_gets_failed_precondition_after_a_bounded_backlog(
    own_etcd: EtcdProc, unique: str
) -> None:
    etcd = Etcd([own_etcd.url])
    await etcd.wait_ready()
    informer = Informer(etcd)
    await informer.start()
    container = pb.Container(meta=pb.Meta(name="web-1", id="cid-1"), node="n1",
                             status=pb.ContainerStatus(docker_id="d1"))
    await Txn().put(keys.container(unique, "a", "web", "web-1"), container).commit(etcd)
    broker = LogBroker()
    up: asyncio.Queue[agent_pb2.LogChunk] = asyncio.Queue()
    cancelled = asyncio.Event()
    asked: asyncio.Queue[str] = asyncio.Queue()

    async def chunks() -> AsyncIterator[agent_pb2.LogChunk]:
        while True:
            yield await up.get()

    async def agent() -> None:
        async for req in broker.agent_channel(unique, "n1", chunks()):
            if req.cancel:
                cancelled.set()
            else:
                asked.put_nowait(req.request_id)

    task = asyncio.create_task(agent())
    logs: AsyncIterator[api_pb2.LogsResponse] | None = None
    try:
        await asyncio.sleep(0)  # the channel is open (one scheduling round)
        servicer = ContainerServicer(etcd, informer, broker)
        logs = servicer.Logs(api_pb2.LogsRequest(cluster=unique, application="a", service="web",
                                                 container="web-1", follow=True),
                             cast(grpc.aio.ServicerContext, Context()))
        first = asyncio.ensure_future(anext(logs))
        rid = await asyncio.wait_for(asked.get(), 30)
        piece = b"x" * (16 * 1024)
        # More than the servicer's own queue (256), the piece its pump holds and the inbox's bound.
        sent = 256 + 1 + LOGS_BACKLOG_BYTES // (len(piece) + CHUNK_OVERHEAD) + 50
        for _ in range(sent):
            up.put_nowait(agent_pb2.LogChunk(request_id=rid, data=piece))
        await asyncio.wait_for(cancelled.wait(), 60)  # the server ended the request on the agent
        got = [await first]
        with pytest.raises(Aborted) as ended:
            async for item in logs:  # the client reads at last: what was buffered, then the end
                got.append(item)
        assert ended.value.code == grpc.StatusCode.FAILED_PRECONDITION
        assert "the client did not read the logs: 8 MiB waited unread" in ended.value.message
        assert all(r.container == "web-1" and r.data == piece for r in got)
        assert 256 < len(got) < sent
    finally:
        if logs is not None:
            with contextlib.suppress(Exception):
                await logs.aclose()  # type: ignore[attr-defined]
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        await informer.stop()
        await etcd.close()
