"""Heartbeats stay out of etcd; nodes' liveness comes from per-replica alive keys (issue 15;
controlplane.dispatcher.liveness). No Docker: real etcd, real ``ccs-server`` processes with a 1 s
heartbeat period (a liveness deadline of 2 x 1 s + 1 s = 3 s) and the agent's real code in this
process over FakeRuntime, as test_replica_logs.py does.

- Heartbeats write nothing: across several heartbeats answered, etcd's revision does not move
  (before: every heartbeat was a read and a full Node record write, one revision each).
- An agent that stops (its process gone) loses its alive key once the deadline passes, and the
  leader declares its node DOWN, saying why.
- A replica SIGKILLed under its agent: the agent moves to the other replica, whose key is there
  before the dead one's lease takes its key away (the test holds that lease until then: a
  barrier, not a race), and the node is never declared down (a pass the leader runs after the
  key went places a container on it).
- A server restarted under its agent (the whole control plane down for longer than the liveness
  lease, so no key survives): the agent reconnects and its node is never declared down.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import signal
from collections.abc import AsyncIterator, Awaitable, Iterator
from pathlib import Path
from typing import Any

import pytest

from ccs.v1 import api_pb2
from ccs.v1 import resources_pb2 as pb
from controlplane.store import keys
from controlplane.store.etcd import Etcd
from nodeagent.agent import Agent
from nodeagent.dispatcher_client import DispatcherClient
from nodeagent.runtime import FakeRuntime
from tests.conftest import EtcdProc, ServerProc, free_port, start_etcd, start_server
from tests.integration import polling
from tests.integration.grpc_helpers import stubs

pytestmark = [pytest.mark.etcd, pytest.mark.timeout(240)]

WAIT = 90.0
until = functools.partial(polling.until, timeout=WAIT)
FLAGS = ["--heartbeat-period", "1", "--down-grace", "2", "--leader-ttl", "3", "--shutdown-grace", "1"]
TEMPLATE = "services:\n  web:\n    image: local/busybox:1\n"


def says(server: ServerProc, event: str, node: str) -> int:
    return sum(1 for line in server.log_path.read_text().splitlines()
               if f'"event": "{event}"' in line and f'"node": "{node}"' in line)


@pytest.fixture
def etcd_proc(tmp_path: Path) -> Iterator[EtcdProc]:
    proc = start_etcd(tmp_path, "liveness-etcd")
    yield proc
    proc.stop()


@pytest.fixture
async def etcd(etcd_proc: EtcdProc) -> AsyncIterator[Etcd]:
    client = Etcd([etcd_proc.url])
    await client.wait_ready(30)
    yield client
    await client.close()


@pytest.fixture
def heartbeats(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Counts heartbeats answered (the agent's own call, wrapped)."""
    answered: list[int] = []
    real = DispatcherClient.heartbeat

    async def counted(self: DispatcherClient, *args: Any, **kw: Any) -> int:
        period = await real(self, *args, **kw)
        answered.append(period)
        return period

    monkeypatch.setattr(DispatcherClient, "heartbeat", counted)
    return answered


class World:
    def __init__(self, tmp_path: Path, etcd_url: str) -> None:
        self.tmp_path, self.etcd_url = tmp_path, etcd_url
        self.servers: list[ServerProc] = []

    def server(self, name: str, port: int | None = None, token: str | None = None) -> ServerProc:
        """A server on the shared etcd; ``token``: the admin token (only the first server makes one)."""
        s = start_server(self.tmp_path / name, self.etcd_url, self.tmp_path / f"{name}.yaml", port=port,
                         extra=FLAGS, expect_token=token is None)
        if token is not None:
            s.token = token
        self.servers.append(s)
        return s

    def close(self) -> None:
        for s in self.servers:
            s.stop(signal.SIGKILL)


@pytest.fixture
def world(tmp_path: Path, etcd_proc: EtcdProc) -> Iterator[World]:
    w = World(tmp_path, etcd_proc.url)
    try:
        yield w
    finally:
        w.close()


async def join_token(server: ServerProc, cluster: str) -> str:
    s = stubs(server.address, server.token)
    try:
        await s.clusters.CreateCluster(api_pb2.CreateClusterRequest(name=cluster), metadata=s.metadata)
        return str((await s.clusters.GetJoinToken(api_pb2.GetJoinTokenRequest(cluster=cluster),
                                                  metadata=s.metadata)).token)
    finally:
        await s.channel.close()


@contextlib.asynccontextmanager
async def agent_on(address: str, token: str, node: str, state_dir: Path,
                   labels: dict[str, str] | None = None) -> AsyncIterator[Agent]:
    agent = Agent(address, runtime=FakeRuntime(), name=node, join_token=token, state_dir=state_dir,
                  address="127.0.0.1", status_linger=0.01, labels=labels)
    run = asyncio.create_task(agent.run())
    try:
        yield agent
    finally:
        await agent.stop()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await run


async def alive_keys(etcd: Etcd, cluster: str, node: str) -> list[str]:
    return [kv.key for kv in (await etcd.range(keys.alive(cluster, node))).kvs]


async def node_of(server: ServerProc, cluster: str, node: str) -> pb.Node:
    async with server.client() as c:
        return await c.nodes.get(cluster, node)


async def node_downs(server: ServerProc, cluster: str, node: str) -> list[pb.Event]:
    async with server.client() as c:
        return [e for e in await c.events.list(cluster) if e.reason == "NodeDown" and e.object == node]


async def test_heartbeats_write_nothing_to_etcd(
    world: World, etcd: Etcd, heartbeats: list[int], tmp_path: Path, unique: str
) -> None:
    a = world.server("a")
    token = await join_token(a, unique)
    node = f"{unique}-n"
    async with agent_on(a.address, token, node, tmp_path / "agent"):
        await until("the node alive and two heartbeats answered",
                    lambda: asyncio.sleep(0, len(heartbeats) >= 2 and says(a, "session opened", node) >= 1))
        await until("its alive key", lambda: _some(alive_keys(etcd, unique, node)))
        before = (await etcd.range("/ccs/", limit=1)).revision
        record = await etcd.get(keys.node(unique, node))
        assert record is not None
        seen = len(heartbeats)
        await until("5 more heartbeats answered", lambda: asyncio.sleep(0, len(heartbeats) >= seen + 5))
        after = (await etcd.range("/ccs/", limit=1)).revision
        again = await etcd.get(keys.node(unique, node))
        assert again is not None and again.mod_revision == record.mod_revision, "a heartbeat wrote the Node record"
        assert after == before, f"etcd's revision moved from {before} to {after} over {len(heartbeats) - seen} heartbeats"
        assert (await node_of(a, unique, node)).status.state == pb.NODE_STATE_READY


async def test_a_stopped_agent_is_declared_down_once_no_replica_hears_it(
    world: World, etcd: Etcd, tmp_path: Path, unique: str
) -> None:
    a = world.server("a")
    token = await join_token(a, unique)
    node = f"{unique}-n"
    async with agent_on(a.address, token, node, tmp_path / "agent"):
        await until("its alive key", lambda: _some(alive_keys(etcd, unique, node)))
        assert (await node_of(a, unique, node)).status.state == pb.NODE_STATE_READY
    # The agent is gone (its connections closed, as a killed process's are).
    await until("its alive key deleted by the replica", lambda: _none(alive_keys(etcd, unique, node)))
    await until("the node DOWN", lambda: _is(node_of(a, unique, node), pb.NODE_STATE_DOWN))
    [down] = await node_downs(a, unique, node)
    assert "no API replica heard it for the 3s deadline" in down.message, down.message


async def test_a_killed_replicas_node_moves_to_the_other_without_being_declared_down(
    world: World, etcd: Etcd, tmp_path: Path, unique: str
) -> None:
    b = world.server("b")  # started first: it leads, so the kill below is not a leader change
    a = world.server("a", token=b.token)
    token = await join_token(b, unique)
    node = f"{unique}-n"
    async with agent_on(a.address, token, node, tmp_path / "agent"):
        await until("the session on A", lambda: asyncio.sleep(0, says(a, "session opened", node) >= 1))
        [on_a] = await alive_keys(etcd, unique, node)
        found = await etcd.client.get(on_a.encode())
        assert found is not None and found.lease
        a.stop(signal.SIGKILL)
        # A barrier instead of a race: A's lease is kept alive here (as A did) until B holds its
        # own key, so the order the design relies on (the agent moves within the lease's
        # remaining life, at least 6.7 s) holds on a loaded box too; the bench measures the time.
        holder = asyncio.create_task(_keep_alive(etcd, found.lease))
        try:
            await until("the session on B", lambda: asyncio.sleep(0, says(b, "session opened", node) >= 1))
            await until("B's key beside A's", lambda: _count(alive_keys(etcd, unique, node), 2))
        finally:
            holder.cancel()
        await until("A's key gone with its lease, B's there",
                    lambda: _only_other(alive_keys(etcd, unique, node), on_a), timeout=WAIT)
        # A pass the leader runs from here on has seen A's key go: it places a container on the
        # node only if the node is READY, and it would have declared it DOWN in that same pass.
        async with b.client() as c:
            await c.applications.create(unique, "app", TEMPLATE)

            async def running() -> bool:
                cs = await c.containers.list(unique, application="app")
                return len(cs) == 1 and cs[0].node == node and cs[0].status.state == pb.CONTAINER_STATE_RUNNING

            await until("a container running on the node", running)
        assert await node_downs(b, unique, node) == []
        assert (await node_of(b, unique, node)).status.state == pb.NODE_STATE_READY


async def test_a_restarted_server_does_not_declare_its_reconnecting_node_down(
    world: World, etcd: Etcd, tmp_path: Path, unique: str
) -> None:
    """A witness node whose agent stops with the server is declared DOWN by the new leader and
    its container rescheduled: that is the new leader's whole timeline (start-up floor, then the
    grace) having passed for a node unheard since the outage, which is what the reconnecting
    node would have met had its return not counted; a pass after that places a container on it.
    (The test slept 15 s for that timeline instead: on a loaded box it could pass vacuously.)"""
    port = free_port()
    a = world.server("a", port=port)
    token = await join_token(a, unique)
    node, witness = f"{unique}-n", f"{unique}-w"
    async with agent_on(a.address, token, node, tmp_path / "agent", labels={"role": "stays"}):
        async with agent_on(a.address, token, witness, tmp_path / "witness", labels={"role": "goes"}):
            await until("both alive keys", lambda: _both(alive_keys(etcd, unique, node),
                                                         alive_keys(etcd, unique, witness)))
            async with a.client() as c:
                await c.applications.create(unique, "app", _on("stays"))
                await c.applications.create(unique, "wit", _on("goes"))
                await until("the witness's container placed", lambda: _placed(c, unique, "wit", witness))
            assert a.stop(signal.SIGTERM) == 0
        # The witness's agent is gone with the server (stopped after it, so the old leader did
        # not see it go): the new leader judges it from before the outage. The outage lasts until no key is left (the liveness lease expired): the new server
        # starts with the node unheard, as after any long outage.
        await until("the old keys expired", lambda: _none(alive_keys(etcd, unique, node)), timeout=WAIT)
        await until("the witness's key expired", lambda: _none(alive_keys(etcd, unique, witness)), timeout=WAIT)
        world.servers.remove(a)
        a2 = world.server("a", port=port, token=a.token)
        await until("the agent's session on the restarted server",
                    lambda: asyncio.sleep(0, says(a2, "session opened", node) >= 1))
        # The new leader's timeline passes: the witness DOWN, then its container rescheduled.
        async with a2.client() as c:
            await until("the witness's container rescheduled", lambda: _rescheduled(c, unique, "wit", witness),
                        timeout=WAIT)
            assert (await node_of(a2, unique, witness)).status.state == pb.NODE_STATE_DOWN
            # A pass from here on places a container on the node only if it is READY, and would
            # have declared it DOWN in that same pass.
            await c.applications.create(unique, "later", _on("stays"))
            await until("a container placed on the node after that", lambda: _placed(c, unique, "later", node))
            [ctr] = await c.containers.list(unique, application="app")
        assert await node_downs(a2, unique, node) == []
        assert ctr.node == node and ctr.desired_state == pb.DESIRED_STATE_RUNNING
        assert (await node_of(a2, unique, node)).status.state == pb.NODE_STATE_READY


def _on(role: str) -> str:
    return TEMPLATE + f"    deploy:\n      placement:\n        constraints: [node.labels.role == {role}]\n"


async def _placed(c: Any, cluster: str, app: str, node: str) -> bool:
    cs = await c.containers.list(cluster, application=app)
    return any(x.node == node and x.desired_state == pb.DESIRED_STATE_RUNNING for x in cs)


async def _rescheduled(c: Any, cluster: str, app: str, node: str) -> bool:
    cs = await c.containers.list(cluster, application=app)
    return any(x.node == node and x.desired_state == pb.DESIRED_STATE_REMOVED for x in cs)


async def _both(one: Awaitable[list[str]], other: Awaitable[list[str]]) -> bool:
    first, second = await one, await other
    return bool(first) and bool(second)


async def _keep_alive(etcd: Etcd, lease: int) -> None:
    while True:
        await etcd.client.refresh_lease(lease)
        await asyncio.sleep(1.0)


async def _count(found: Awaitable[list[str]], n: int) -> bool:
    return len(await found) == n


async def _some(found: Awaitable[list[str]]) -> bool:
    return bool(await found)


async def _none(found: Awaitable[list[str]]) -> bool:
    return not await found


async def _is(node: Awaitable[pb.Node], state: int) -> bool:
    return (await node).status.state == state


async def _only_other(found: Awaitable[list[str]], gone: str) -> bool:
    now = await found
    return len(now) == 1 and now[0] != gone
