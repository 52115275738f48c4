"""Application bridges on a real engine: a freed block's bridge leaves the node, names of two
clusters never meet, and bridges an older agent named are adopted or replaced (issue 11).

Against the root dockerd through the agent's runtime code (`DockerRuntime`), with the fixtures
and the cluster label of test_app_subnets.py (everything made here is removed with them), and
once end to end through ccs-server and a real agent.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import time
from pathlib import Path
from typing import Any

import docker
import pytest

from ccs.v1 import agent_pb2
from ccs.v1 import resources_pb2 as pb
from controlplane.ipam import DEFAULT_NETWORK, block_prefix
from nodeagent.network.plan import plan_fabric
from nodeagent.network.sweep import BridgeSweeper
from nodeagent.runtime import naming
from nodeagent.runtime.docker_engine import DockerRuntime
from nodeagent.runtime.types import NetworkFailed
from tests.integration.agent_process import agent_process

from .docker_fixtures import TestImages, docker_client, test_image  # noqa: F401
from .test_app_subnets import CLUSTER, POD_RANGE, WAIT, assignment, clean_engine, network_subnet, rt  # noqa: F401
from .test_app_subnets_server import _cli, _ok

pytestmark = [pytest.mark.docker]


async def test_a_freed_further_blocks_bridge_is_removed_after_the_map_no_longer_lists_it(
    rt: DockerRuntime,  # noqa: F811
    clean_engine: docker.DockerClient,  # noqa: F811
    test_image: TestImages,  # noqa: F811
) -> None:
    """Issue 11's shadowing bug: the bridge of a further block whose containers are gone stayed
    on the node until the application left, so once the block was handed to another node (as
    part of a larger block) its connected route shadowed the route there. After a map that no
    longer lists the block here, the agent's sweeper (what the fabric runs after each apply)
    removes that bridge; the first block's bridge, still listed, stays; a bridge that still has
    a container is kept until the container is gone."""

    blocks = list(POD_RANGE.subnets(new_prefix=block_prefix(1)))
    first, second = str(blocks[90]), str(blocks[91])
    holder = assignment("freed", test_image.busybox, first, command=("sleep", "3600"))
    on_second = assignment("freed", test_image.busybox, second, command=("sleep", "3600"))
    on_second.meta.name = "web-2"
    on_second.subnet_index[DEFAULT_NETWORK] = 1
    await rt.prepare(holder)
    holder_id = await rt.create(holder)
    await rt.prepare(on_second)
    second_id = await rt.create(on_second)
    engine_name = naming.network_name(CLUSTER, "freed", DEFAULT_NETWORK, 1)
    # The block was freed and handed to node-2 inside a /24: what node-1's map then says.
    larger = ipaddress.IPv4Network(second).supernet(new_prefix=24)
    m = agent_pb2.NetworkMap(cluster=CLUSTER, version=9, pod_cidr=str(POD_RANGE), networks=[
        agent_pb2.AppNetwork(application="freed", network=DEFAULT_NETWORK, blocks=[
            agent_pb2.NetworkBlock(node="node-1", node_address="127.0.0.1", subnet=first)]),
        agent_pb2.AppNetwork(application="other", network=DEFAULT_NETWORK, blocks=[
            agent_pb2.NetworkBlock(node="node-2", node_address="192.0.2.2", subnet=str(larger))])])
    plan = plan_fabric(m, node="node-1", cluster=CLUSTER)
    sweep = BridgeSweeper(rt, CLUSTER, lambda: (first,))
    try:
        assert await sweep(plan) == ""
        assert clean_engine.api.networks(names=[engine_name])  # its container is still there: kept
        await rt.remove(second_id, volumes=True)
        assert clean_engine.api.networks(names=[engine_name])  # the bug: nothing else removes it
        assert await sweep(plan) == ""
        assert not clean_engine.api.networks(names=[engine_name])
        assert network_subnet(clean_engine, "freed") == first
    finally:
        await rt.remove(holder_id, volumes=True)
        await rt.remove(second_id, volumes=True)
        await rt.remove_app_resources(CLUSTER, "freed", volumes=True)


def _drop_networks(client: docker.DockerClient, cluster: str) -> None:
    """The networks of a cluster made only inside one test (no agent ran for it: no fabric)."""
    for n in client.api.networks(filters={"label": [f"{naming.CLUSTER}={cluster}"]}):
        with contextlib.suppress(docker.errors.APIError):
            client.api.remove_network(n["Id"])


async def _running(runtime: DockerRuntime, docker_id: str) -> Any:
    deadline = time.monotonic() + WAIT
    observed = await runtime.inspect(docker_id)
    while observed is not None and observed.state != pb.CONTAINER_STATE_RUNNING and time.monotonic() < deadline:
        await asyncio.sleep(0.2)
        observed = await runtime.inspect(docker_id)
    assert observed is not None and observed.state == pb.CONTAINER_STATE_RUNNING
    return observed


async def test_cluster_a_b_with_app_c_and_cluster_a_with_app_b_c_have_bridges_of_their_own(
    rt: DockerRuntime,  # noqa: F811
    clean_engine: docker.DockerClient,  # noqa: F811
    test_image: TestImages,  # noqa: F811
) -> None:
    """Both were `ccs-<a>-b-c`: the second prepare found the first cluster's bridge and either
    joined it (another cluster's network, with the wrong subnet) or removed it under the other
    cluster's containers. Now each runs on its own bridge, in its own block."""
    other_cluster = f"{CLUSTER}-b"
    other_rt = DockerRuntime(bind_address="127.0.0.1", cluster=other_cluster)
    blocks = list(POD_RANGE.subnets(new_prefix=block_prefix(1)))
    one = assignment("c", test_image.busybox, str(blocks[100]), command=("sleep", "3600"))
    one.cluster = other_cluster
    two = assignment("b-c", test_image.busybox, str(blocks[101]), command=("sleep", "3600"))
    ids: list[tuple[DockerRuntime, str]] = []
    try:
        for runtime, c in ((other_rt, one), (rt, two)):
            await runtime.prepare(c)
            ids.append((runtime, await runtime.create(c)))
            await runtime.start(ids[-1][1])
        for (runtime, docker_id), c in zip(ids, (one, two), strict=True):
            observed = await _running(runtime, docker_id)
            assert ipaddress.IPv4Address(observed.addresses[DEFAULT_NETWORK]) in ipaddress.IPv4Network(
                c.subnets[DEFAULT_NETWORK])
            (name,) = observed.networks
            assert name == naming.network_name(c.cluster, c.application)
            assert clean_engine.api.inspect_network(name)["Labels"][naming.CLUSTER] == c.cluster
        assert naming.network_name(other_cluster, "c") != naming.network_name(CLUSTER, "b-c")
    finally:
        for runtime, docker_id in ids:
            await runtime.remove(docker_id, volumes=True)
        await other_rt.remove_app_resources(other_cluster, "c", volumes=True)
        await rt.remove_app_resources(CLUSTER, "b-c", volumes=True)
        _drop_networks(clean_engine, other_cluster)
        await other_rt.aclose()


async def test_a_bridge_an_older_agent_named_is_adopted_while_in_use_and_replaced_when_not(
    rt: DockerRuntime,  # noqa: F811
    clean_engine: docker.DockerClient,  # noqa: F811
    test_image: TestImages,  # noqa: F811
) -> None:
    """Upgrade: a bridge named `ccs-<cluster>-<app>` by an older agent, with a container of the
    application running on it, is joined by the application's new containers (a second bridge
    on the same block cannot be made, and the running one must not move); without containers
    it is removed and the bridge made under the new name. The application's removal removes
    it. A same-named bridge of another cluster is never touched."""
    blocks = list(POD_RANGE.subnets(new_prefix=block_prefix(1)))
    held, idle = str(blocks[110]), str(blocks[111])
    legacy = naming.legacy_network_name(CLUSTER, "old")
    clean_engine.api.create_network(legacy, driver="bridge", labels=naming.app_labels(CLUSTER, "old"),
                                    ipam={"Driver": "default", "Config": [{"Subnet": held}]})
    before = clean_engine.containers.create(  # what the older agent left running
        test_image.busybox, ["sleep", "3600"], network=legacy,
        labels={naming.MANAGED: "true", naming.CLUSTER: CLUSTER, naming.APP: "old"})
    before.start()
    new_id = ""
    try:
        c = assignment("old", test_image.busybox, held, command=("sleep", "3600"))
        await rt.prepare(c)
        new_id = await rt.create(c)
        await rt.start(new_id)
        observed = await _running(rt, new_id)
        assert dict(observed.networks).keys() == {legacy}
        assert observed.addresses[DEFAULT_NETWORK] != "" and ipaddress.IPv4Address(
            observed.addresses[DEFAULT_NETWORK]) in ipaddress.IPv4Network(held)
        assert not clean_engine.api.networks(names=[naming.network_name(CLUSTER, "old")])
    finally:
        if new_id:
            await rt.remove(new_id, volumes=True)
        before.remove(force=True)
    await rt.remove_app_resources(CLUSTER, "old", volumes=True)
    assert not [n for n in clean_engine.api.networks(names=[legacy]) if n["Name"] == legacy]

    idle_legacy = naming.legacy_network_name(CLUSTER, "idle")
    clean_engine.api.create_network(idle_legacy, driver="bridge", labels=naming.network_labels(CLUSTER, "idle", "default"),
                                    ipam={"Driver": "default", "Config": [{"Subnet": idle}]})
    try:
        await rt.prepare(assignment("idle", test_image.busybox, idle))
        assert not [n for n in clean_engine.api.networks(names=[idle_legacy]) if n["Name"] == idle_legacy]
        assert network_subnet(clean_engine, "idle") == idle
    finally:
        await rt.remove_app_resources(CLUSTER, "idle", volumes=True)

    # Another cluster's bridge with the same older name (cluster `<C>-o`, app `ld`, against our
    # app `o-ld`): not ours by its labels, so left alone.
    foreign_cluster = f"{CLUSTER}-o"
    foreign = naming.legacy_network_name(foreign_cluster, "ld")
    assert foreign == naming.legacy_network_name(CLUSTER, "o-ld")
    clean_engine.api.create_network(foreign, driver="bridge", labels=naming.network_labels(foreign_cluster, "ld", "default"),
                                    ipam={"Driver": "default", "Config": [{"Subnet": str(blocks[112])}]})
    try:
        await rt.prepare(assignment("o-ld", test_image.busybox, str(blocks[113])))
        assert [n for n in clean_engine.api.networks(names=[foreign]) if n["Name"] == foreign]
        assert network_subnet(clean_engine, "o-ld") == str(blocks[113])
    finally:
        await rt.remove_app_resources(CLUSTER, "o-ld", volumes=True)
        _drop_networks(clean_engine, foreign_cluster)

    # An older name can spell a new one: (C, x, network front) was `ccs-C-x_front`, which is now
    # (cluster C-x, app front). That network is refused, named, never joined or replaced.
    clash = naming.legacy_network_name(CLUSTER, "x", "front")
    assert clash == naming.network_name(f"{CLUSTER}-x", "front")
    clean_engine.api.create_network(clash, driver="bridge", labels=naming.network_labels(CLUSTER, "x", "front"),
                                    ipam={"Driver": "default", "Config": [{"Subnet": str(blocks[114])}]})
    c = assignment("front", test_image.busybox, str(blocks[115]))
    c.cluster = f"{CLUSTER}-x"
    with pytest.raises(NetworkFailed, match=f"network {clash} exists and is not this application's"):
        await rt.prepare(c)
    (still,) = [n for n in clean_engine.api.networks(names=[clash]) if n["Name"] == clash]
    assert still["Labels"][naming.CLUSTER] == CLUSTER


@pytest.mark.etcd
@pytest.mark.slow
@pytest.mark.timeout(400)
async def test_through_the_server_and_agent_a_freed_further_blocks_bridge_leaves_the_node(
    ccs_server: Any, clean_engine: docker.DockerClient, test_image: TestImages, tmp_path: Path,  # noqa: F811
) -> None:
    """Issue 11's stale bridge, end to end: 2 replicas get a /28 (13 addresses); scaled to 14,
    the pair gets a second block and the agent its bridge `<app network>.1`; scaled back to 2,
    the block is freed, and the agent removes that bridge after the map that no longer lists it
    (before, it stayed until the application left the node); the first block's bridge stays."""
    cluster, node = CLUSTER, f"{CLUSTER}-sweep"
    _ok(ccs_server, "cluster", "create", cluster, "--pod-cidr", "100.102.0.0/16")
    token = _ok(ccs_server, "cluster", "join-token", cluster).strip()
    further = naming.network_name(cluster, "grow", DEFAULT_NETWORK, 1)

    async def until(what: str, done: Any) -> None:
        deadline = time.monotonic() + 120  # a bound on convergence, not a speed assertion
        while not done():
            assert time.monotonic() < deadline, what
            await asyncio.sleep(0.5)

    def exists(name: str) -> bool:
        return any(n["Name"] == name for n in clean_engine.api.networks(names=[name]))

    try:
        with agent_process(ccs_server.address, token, node, tmp_path / "agent", tmp_path / "agent.log"):
            compose = tmp_path / "app" / "compose.yaml"
            compose.parent.mkdir()
            compose.write_text(f'services:\n  web:\n    image: {test_image.busybox}\n    command: ["sleep", "3600"]\n'
                               "    deploy:\n      replicas: 2\n")
            _ok(ccs_server, "app", "deploy", "-c", cluster, "-f", str(compose), "--name", "grow",
                "--wait", "--timeout", "90s")
            _ok(ccs_server, "service", "scale", "-c", cluster, "grow/web", "14")

            def running() -> int:
                return len(clean_engine.api.containers(filters={"label": [f"{naming.CLUSTER}={cluster}",
                                                                           f"{naming.APP}=grow"],
                                                                "status": "running"}))

            await until("14 running, one on the second block's bridge", lambda: running() == 14 and exists(further))
            _ok(ccs_server, "service", "scale", "-c", cluster, "grow/web", "2")
            await until("scaled back to 2", lambda: running() == 2)
            await until(f"the freed block's bridge {further} removed", lambda: not exists(further))
            assert exists(naming.network_name(cluster, "grow"))
    finally:
        _cli(ccs_server, "cluster", "rm", cluster, "--force")
