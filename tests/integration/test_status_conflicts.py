"""A container status an agent reports lands however often concurrent writes make it conflict.

The agent remembers what it sent and sends an unchanged status again only after it reconnects
(:mod:`nodeagent.reporter`), so the server must not answer OK and drop a status: it gave up after
5 conflicts and logged "dropped (agent will resend)", and the container's stored status stayed
what it was until the agent's next session. The conflicts here are real ones, on a real etcd:
before each of the writer's transactions another client (the control plane, say) rewrites the
container's record, changing its desired state, so the writer's guarded transaction fails. The
status must land with the other writer's change kept; and when the conflicts never stop, the
call must fail (ABORTED, so the agent puts the batch back and sends it again), not answer OK.
"""

from __future__ import annotations

import uuid
from types import SimpleNamespace
from typing import Any, cast

import grpc
import pytest

from ccs.v1 import agent_pb2
from ccs.v1 import resources_pb2 as pb
from controlplane.auth import Principal
from controlplane.dispatcher.status_writer import ContainerStatusWriter
from controlplane.informer import Informer
from controlplane.store import keys
from controlplane.store.codec import decode
from controlplane.store.etcd import Etcd
from controlplane.store.meta import new_meta
from controlplane.store.txn import Txn

pytestmark = pytest.mark.etcd

NODE = "n1"


class Aborted(Exception):
    def __init__(self, code: grpc.StatusCode, message: str) -> None:
        super().__init__(f"{code.name}: {message}")
        self.code = code


class Context:
    """What the writer uses of a grpc.aio.ServicerContext."""

    async def abort(self, code: grpc.StatusCode, message: str, *_: Any) -> None:
        raise Aborted(code, message)

    def time_remaining(self) -> float | None:
        return None


class Competitor:
    """Before each of the writer's transactions (while ``left`` > 0), another etcd client flips
    the container's desired state, so the writer's guard on the record's revision fails."""

    def __init__(self, writer_etcd: Etcd, other: Etcd, key: str, times: int) -> None:
        self.other, self.key, self.left, self.done = other, key, times, 0
        real = writer_etcd.txn

        async def txn(*args: Any, **kwargs: Any) -> tuple[bool, Any]:
            if self.left > 0:
                self.left -= 1
                await self.flip()
            return await real(*args, **kwargs)

        writer_etcd.txn = txn  # type: ignore[method-assign]

    async def flip(self) -> None:
        kv = await self.other.get(self.key)
        assert kv is not None
        c = decode(kv, pb.Container)
        c.desired_state = (pb.DESIRED_STATE_STOPPED if c.desired_state == pb.DESIRED_STATE_RUNNING
                           else pb.DESIRED_STATE_RUNNING)
        await Txn().update(self.key, c, "container", c.meta.name, kv.mod_revision).commit(self.other)
        self.done += 1


async def _container(etcd: Etcd) -> tuple[str, str]:
    cluster = f"sc-{uuid.uuid4().hex[:8]}"
    key = keys.container(cluster, "app", "web", "web-1")
    c = pb.Container(meta=new_meta("web-1"), cluster=cluster, application="app", service="web", node=NODE,
                     desired_state=pb.DESIRED_STATE_RUNNING,
                     status=pb.ContainerStatus(state=pb.CONTAINER_STATE_STARTING))
    await Txn().create(key, c, "container", "web-1").commit(etcd)
    return cluster, key


def _writer(etcd: Etcd, retry_for: float = 10.0) -> ContainerStatusWriter:
    informer = cast(Informer, SimpleNamespace(clusters={}))  # nothing cached: the writer reads etcd
    return ContainerStatusWriter(etcd, informer, retry_for=retry_for)


def _running(cluster: str) -> tuple[Principal, agent_pb2.UpdateStatusRequest]:
    update = agent_pb2.ContainerStatusUpdate(application="app", service="web", container="web-1",
                                             status=pb.ContainerStatus(state=pb.CONTAINER_STATE_RUNNING,
                                                                       docker_id="abc"))
    return Principal(NODE, "node", cluster, NODE), agent_pb2.UpdateStatusRequest(updates=[update])


async def test_a_status_lands_through_more_conflicts_than_the_old_five(clients: tuple[Etcd, Etcd]) -> None:
    writer_etcd, other = clients
    cluster, key = await _container(other)
    competitor = Competitor(writer_etcd, other, key, times=8)
    p, request = _running(cluster)
    await _writer(writer_etcd).write(p, request, cast(grpc.aio.ServicerContext, Context()))
    assert competitor.done == 8  # eight transactions of the writer's met a newer record
    kv = await other.get(key)
    assert kv is not None
    stored = decode(kv, pb.Container)
    assert stored.status.state == pb.CONTAINER_STATE_RUNNING and stored.status.docker_id == "abc"
    assert stored.desired_state == pb.DESIRED_STATE_RUNNING  # flipped 8 times: the competitor's last write kept


async def test_a_status_that_never_stops_conflicting_fails_the_call_instead_of_answering_ok(
        clients: tuple[Etcd, Etcd]) -> None:
    writer_etcd, other = clients
    cluster, key = await _container(other)
    Competitor(writer_etcd, other, key, times=1_000_000)
    p, request = _running(cluster)
    with pytest.raises(Aborted) as failed:
        await _writer(writer_etcd, retry_for=0.5).write(p, request, cast(grpc.aio.ServicerContext, Context()))
    assert failed.value.code == grpc.StatusCode.ABORTED and "send them again" in str(failed.value)
    kv = await other.get(key)
    assert kv is not None and decode(kv, pb.Container).status.state == pb.CONTAINER_STATE_STARTING
