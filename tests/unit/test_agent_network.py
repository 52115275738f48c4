"""The agent feeds the network fabric every map it is sent and reports the fabric's problems.

FakeRuntime and the in-process Dispatcher of test_agent_e2e; the fabric is the real class with
its I/O (`apply`) replaced by a recorder, so only the agent's wiring is under test here (the
fabric itself runs on real hosts in tests/integration/test_network_fabric.py).
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from ccs.v1 import agent_pb2
from nodeagent.agent import Agent
from nodeagent.network.fabric import NetworkFabric
from nodeagent.network.plan import FabricPlan, plan_fabric
from nodeagent.runtime import FakeRuntime

from .test_agent_e2e import Dispatcher, running
from .test_agent_helpers import CLUSTER, complete


class RecordingFabric(NetworkFabric):
    def __init__(self) -> None:
        super().__init__(resolver=None)
        self.seen: list[FabricPlan] = []

    async def apply(self) -> FabricPlan | None:
        if self._map is None:
            return None
        plan = plan_fabric(self._map, node=self.node, cluster=self.cluster)
        self.seen.append(plan)
        self._set_problem("map", "; ".join(plan.problems))
        if self.after_apply is not None:  # as the real apply does after routes and rules
            self._set_problem("bridges", await self.after_apply(plan))
        self.applied.set()
        return plan


class HeartbeatDispatcher(Dispatcher):
    def __init__(self) -> None:
        super().__init__()
        self.messages: list[str] = []

    async def Heartbeat(self, request: Any, context: Any) -> agent_pb2.HeartbeatResponse:
        self.messages.append(request.status.message)
        return await super().Heartbeat(request, context)


async def test_the_map_reaches_the_fabric_and_its_problem_the_node_status(tmp_path: Path) -> None:
    import grpc.aio

    from ccs.v1 import agent_pb2_grpc

    server = grpc.aio.server()
    d = HeartbeatDispatcher()
    agent_pb2_grpc.add_DispatcherServicer_to_server(d, server)
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    fabric = RecordingFabric()
    agent = Agent(f"127.0.0.1:{port}", insecure=True, runtime=FakeRuntime(), name="node-1", join_token="join-me",
                  state_dir=tmp_path, status_linger=0.01, network=fabric)
    script: asyncio.Queue[agent_pb2.SessionMessage] = asyncio.Queue()
    await d.sessions.put(script)
    try:
        async with running(agent):
            msg = complete(1)
            msg.network_map.CopyFrom(agent_pb2.NetworkMap(cluster=CLUSTER, version=5, pod_cidr="10.128.0.0/9", networks=[
                agent_pb2.AppNetwork(application="shop", network="default", blocks=[
                    agent_pb2.NetworkBlock(node="node-1", node_address="10.0.0.5", subnet="10.128.0.0/28"),
                    agent_pb2.NetworkBlock(node="node-2", node_address="10.0.0.6", subnet="10.128.0.17/28")])]))
            await script.put(msg)
            await asyncio.wait_for(fabric.applied.wait(), 20)
            (plan,) = fabric.seen
            assert (plan.cluster, plan.node, plan.version) == (CLUSTER, "node-1", 5)
            await d.until(lambda: any("blocks[1].subnet" in m for m in d.messages))
            # a message without a map (version 0) changes nothing
            fabric.applied.clear()
            await script.put(agent_pb2.SessionMessage(type=agent_pb2.SessionMessage.TYPE_INCREMENTAL,
                                                      version=2, base_version=1))
            await d.until(lambda: d.heartbeats >= 3)
            assert len(fabric.seen) == 1
    finally:
        await server.stop(None)


async def test_after_a_map_the_agent_removes_the_bridge_of_a_block_it_no_longer_lists(tmp_path: Path) -> None:
    """The stale-bridge sweep is wired: a bridge left from a freed further block of `shop` goes
    after the next map; the bridge of the block the map lists stays."""
    import grpc.aio

    from ccs.v1 import agent_pb2_grpc
    from ccs.v1 import resources_pb2 as pb
    from nodeagent.runtime import naming

    server = grpc.aio.server()
    d = HeartbeatDispatcher()
    agent_pb2_grpc.add_DispatcherServicer_to_server(d, server)
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    runtime = FakeRuntime()
    for index, subnet in ((0, "10.128.0.0/28"), (1, "10.128.0.64/26")):  # what an earlier run made
        c = pb.Container(meta=pb.Meta(id=f"old{index}", name=f"web-{index}"), cluster=CLUSTER, application="shop",
                         service="web", node="node-1", slot=index + 1, spec=pb.ServiceSpec(image="busybox"))
        c.subnets["default"] = subnet
        c.subnet_index["default"] = index
        await runtime.prepare(c)
    fabric = RecordingFabric()
    agent = Agent(f"127.0.0.1:{port}", insecure=True, runtime=runtime, name="node-1", join_token="join-me",
                  state_dir=tmp_path, status_linger=0.01, network=fabric)
    script: asyncio.Queue[agent_pb2.SessionMessage] = asyncio.Queue()
    await d.sessions.put(script)
    try:
        async with running(agent):
            msg = complete(1)
            msg.network_map.CopyFrom(agent_pb2.NetworkMap(cluster=CLUSTER, version=5, pod_cidr="10.128.0.0/9", networks=[
                agent_pb2.AppNetwork(application="shop", network="default", blocks=[
                    agent_pb2.NetworkBlock(node="node-1", node_address="10.0.0.5", subnet="10.128.0.0/28")])]))
            await script.put(msg)
            await asyncio.wait_for(fabric.applied.wait(), 20)
            assert naming.network_name(CLUSTER, "shop", "default", 1) not in runtime.networks
            assert naming.network_name(CLUSTER, "shop") in runtime.networks
    finally:
        await server.stop(None)


async def test_a_resolver_that_cannot_serve_does_not_hold_back_routes_and_rules(monkeypatch: Any) -> None:
    """Port 53 taken (a dnsmasq on 0.0.0.0:53, a second agent in the namespace): the resolver's
    start is retried and reported, and the plan is applied meanwhile."""
    from nodeagent.network import fabric as fabric_module
    from nodeagent.network.resolver import Resolver, Upstreams

    async def taken(address: Any) -> None:
        raise OSError("Address already in use")

    monkeypatch.setattr(fabric_module, "ensure_resolver_address", taken)

    class Recording(RecordingFabric):
        def __init__(self) -> None:
            NetworkFabric.__init__(self, resolver=Resolver("169.254.20.53", Upstreams(own_address="169.254.20.53")),
                                   period=0.05)
            self.seen = []

    fabric = Recording()
    fabric.submit(agent_pb2.NetworkMap(cluster=CLUSTER, version=7))
    task = asyncio.create_task(fabric.run(cluster=CLUSTER, node="n1"))
    try:
        await asyncio.wait_for(fabric.applied.wait(), 10)
        assert fabric.seen and fabric.seen[0].version == 7
        # One more apply: the loop has waited in between, so the resolver's first start has
        # run; its failure is reported, not swallowed, and applying goes on.
        fabric.applied.clear()
        await asyncio.wait_for(fabric.applied.wait(), 10)
        assert "resolver: cannot serve on 169.254.20.53:53" in fabric.problem, fabric.problem
        assert "Address already in use" in fabric.problem
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)


async def test_sweep_runs_the_bridge_sweeper_alone_and_poke_applies_everything(monkeypatch: Any) -> None:
    """`sweep()` (after a container's removal) runs the sweeper with the plan last applied and
    touches no route or rule; `poke()` and a new map still apply everything (the real apply,
    its iptables and netlink parts counted instead of run)."""
    from collections import Counter

    from nodeagent.network import fabric as fabric_module

    calls: Counter[str] = Counter()

    async def firewall(plan: Any) -> None:
        calls["firewall"] += 1

    async def routes(wanted: Any) -> None:
        calls["routes"] += 1

    async def sweeper(plan: FabricPlan) -> str:
        assert plan.version == 7
        calls["sweep"] += 1
        return ""

    monkeypatch.setattr(fabric_module, "apply_firewall", firewall)
    monkeypatch.setattr(fabric_module, "sync_routes", routes)
    fabric = NetworkFabric(resolver=None, period=3600)
    fabric.after_apply = sweeper
    fabric.sweep()  # before any map: nothing to sweep with, nothing applied
    task = asyncio.create_task(fabric.run(cluster=CLUSTER, node="n1"))
    try:
        await fabric.swept.wait()
        assert calls == {}
        fabric.submit(agent_pb2.NetworkMap(cluster=CLUSTER, version=7))
        await fabric.applied.wait()
        assert calls == {"firewall": 1, "routes": 1, "sweep": 1}
        for _ in range(3):
            fabric.swept.clear()
            fabric.sweep()
            await fabric.swept.wait()
        assert calls == {"firewall": 1, "routes": 1, "sweep": 4}
        fabric.applied.clear()
        fabric.poke()
        await fabric.applied.wait()
        assert calls == {"firewall": 2, "routes": 2, "sweep": 5}
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)


async def test_a_removed_container_asks_the_fabric_for_a_sweep_not_a_full_apply(tmp_path: Path) -> None:
    import grpc.aio

    from ccs.v1 import agent_pb2_grpc
    from ccs.v1 import resources_pb2 as pb

    from .test_agent_helpers import container, incremental

    class Counting(RecordingFabric):
        def __init__(self) -> None:
            super().__init__()
            self.pokes = self.sweeps = 0

        def poke(self) -> None:
            self.pokes += 1
            super().poke()

        def sweep(self) -> None:
            self.sweeps += 1
            super().sweep()

    server = grpc.aio.server()
    d = HeartbeatDispatcher()
    agent_pb2_grpc.add_DispatcherServicer_to_server(d, server)
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    fabric = Counting()
    agent = Agent(f"127.0.0.1:{port}", insecure=True, runtime=FakeRuntime(), name="node-1", join_token="join-me",
                  state_dir=tmp_path, status_linger=0.01, network=fabric)
    script: asyncio.Queue[agent_pb2.SessionMessage] = asyncio.Queue()
    await d.sessions.put(script)
    try:
        async with running(agent):
            await script.put(complete(1, container("a")))
            await d.until(lambda: d.state("web-a") == pb.CONTAINER_STATE_RUNNING)
            pokes = fabric.pokes
            await script.put(incremental(1, 2, (agent_pb2.Assignment.ACTION_REMOVE, container("a"))))
            await d.until(lambda: d.state("web-a") == pb.CONTAINER_STATE_REMOVED)
            await d.until(lambda: fabric.sweeps >= 1)
            assert fabric.pokes == pokes  # no full apply for a removal
    finally:
        await server.stop(None)
