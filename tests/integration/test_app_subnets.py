"""Application networks take their subnets from the control plane, not the engine's pools.

Against the real Docker Engine (the root dockerd), through the agent's runtime code
(`DockerRuntime.prepare/create/start`), with subnets handed out by the control plane's
allocator (`controlplane.ipam.SubnetPool`), as a reconcile pass does:

- 1,000 applications' networks on one node, then one more application deploys and runs
  (the engine's default pools hold about 30 bridge networks);
- a subnet that overlaps a network already on the host is a permanent failure, reported with
  ``FAILURE_REASON_NETWORK``, which the deploy verdict turns into a failed deploy (exit 8)
  with the engine's message.

Everything made here carries this module's cluster label and is removed at the end, even when
a test fails. The range is inside 100.64.0.0/10 (shared address space), away from the default
cluster ranges in 10.0.0.0/8 that other test clusters on this daemon use.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import docker
import pytest

from ccs.deploy_verdict import Snapshot, assess
from ccs.errors import DeployFailed
from ccs.v1 import resources_pb2 as pb
from controlplane.ipam import DEFAULT_NETWORK, SubnetPool, block_prefix
from nodeagent import status
from nodeagent.runtime import FakeRuntime, Runtime, naming
from nodeagent.runtime.docker_engine import DockerRuntime
from nodeagent.runtime.types import NetworkFailed, RuntimeFailure

from .docker_fixtures import TestImages, docker_client, remove_cluster_objects, test_image  # noqa: F401
from .private_engine import private_engine

pytestmark = [pytest.mark.docker]

ROOT = Path(__file__).resolve().parents[2]
CLUSTER = f"sn{uuid.uuid4().hex[:8]}"
POD_RANGE = ipaddress.IPv4Network("100.100.0.0/16")
APPS = 1000
CONCURRENCY = 4  # the machine has 2 cores shared with others
WAIT = 60.0


def _remove_everything(client: docker.DockerClient) -> None:
    remove_cluster_objects(client, CLUSTER)
    for n in client.api.networks(names=[f"{CLUSTER}-squatter"]):
        with contextlib.suppress(docker.errors.NotFound, docker.errors.APIError):
            client.api.remove_network(n["Id"])


@pytest.fixture(scope="module")
def clean_engine(docker_client: docker.DockerClient) -> Iterator[docker.DockerClient]:  # noqa: F811
    _remove_everything(docker_client)
    try:
        yield docker_client
    finally:
        _remove_everything(docker_client)


@pytest.fixture
async def rt(clean_engine: docker.DockerClient, test_image: TestImages) -> AsyncIterator[DockerRuntime]:  # noqa: F811
    runtime = DockerRuntime(bind_address="127.0.0.1", cluster=CLUSTER)
    try:
        yield runtime
    finally:
        await runtime.aclose()


def assignment(app: str, image: str, subnet: str, *, command: tuple[str, ...] = ()) -> pb.Container:
    """A container placed on this node with its app network's block, as the pass writes it."""
    c = pb.Container(
        meta=pb.Meta(id=uuid.uuid4().hex, name="web-1"), cluster=CLUSTER, application=app, service="web",
        node="node-1", slot=1, spec_generation=1, desired_state=pb.DESIRED_STATE_RUNNING,
    )
    c.spec.CopyFrom(pb.ServiceSpec(image=image, command=list(command)))
    c.subnets[DEFAULT_NETWORK] = subnet
    return c


def network_subnet(client: docker.DockerClient, app: str) -> str:
    attrs = client.api.inspect_network(naming.network_name(CLUSTER, app))
    return str(attrs["IPAM"]["Config"][0]["Subnet"])


@pytest.fixture
async def private_rt(tmp_path: Path, test_image: TestImages) -> AsyncIterator[tuple[DockerRuntime, docker.DockerClient]]:  # noqa: F811
    """A runtime on an engine of the test's own (tests/integration/private_engine.py): a thousand
    networks never touch the shared engine, and the clean-up is a kill, not 1,000 removals."""
    with private_engine(f"ccs-t1k-{uuid.uuid4().hex[:6]}", tmp_path, load_images=(test_image.busybox,)) as client:
        runtime = DockerRuntime(client, bind_address="127.0.0.1", cluster=CLUSTER)
        try:
            yield runtime, client
        finally:
            await runtime.aclose()


@pytest.mark.slow
@pytest.mark.timeout(900)
async def test_a_thousand_app_networks_on_one_node_then_one_more_app_runs(
    private_rt: tuple[DockerRuntime, docker.DockerClient],
    test_image: TestImages,  # noqa: F811
) -> None:
    rt, clean_engine = private_rt
    pool = SubnetPool(POD_RANGE)
    apps = [f"app{i:04d}" for i in range(APPS)]
    subnets = {app: str(pool.allocate(block_prefix(1))) for app in apps}
    sem = asyncio.Semaphore(CONCURRENCY)

    async def prepare(app: str) -> None:
        async with sem:
            await rt.prepare(assignment(app, test_image.busybox, subnets[app]))

    t0 = time.monotonic()
    await asyncio.gather(*(prepare(app) for app in apps))
    took = time.monotonic() - t0
    print(f"\n{APPS} app networks created through DockerRuntime.prepare in {took:.1f} s "
          f"({took / APPS * 1000:.0f} ms each, {CONCURRENCY} at a time)")

    ours = clean_engine.api.networks(filters={"label": [f"{naming.CLUSTER}={CLUSTER}"]})
    assert len(ours) == APPS
    for app in (apps[0], apps[APPS // 2], apps[-1]):
        assert network_subnet(clean_engine, app) == subnets[app]

    # One more application: its network, then its container, running on its block.
    extra = assignment("extra", test_image.busybox, str(pool.allocate(block_prefix(1))),
                       command=("sleep", "3600"))
    await rt.prepare(extra)
    docker_id = await rt.create(extra)
    await rt.start(docker_id)
    deadline = time.monotonic() + WAIT
    observed = await rt.inspect(docker_id)
    while observed is not None and observed.state != pb.CONTAINER_STATE_RUNNING and time.monotonic() < deadline:
        await asyncio.sleep(0.2)
        observed = await rt.inspect(docker_id)
    assert observed is not None and observed.state == pb.CONTAINER_STATE_RUNNING
    address = ipaddress.IPv4Address(observed.networks[naming.network_name(CLUSTER, "extra")])
    assert address in ipaddress.IPv4Network(extra.subnets[DEFAULT_NETWORK])

    t0 = time.monotonic()
    await rt.remove(docker_id, volumes=True)

    async def remove(app: str) -> None:
        async with sem:
            await rt.remove_app_resources(CLUSTER, app, volumes=True)

    await asyncio.gather(*(remove(app) for app in [*apps, "extra"]))
    print(f"removed them in {time.monotonic() - t0:.1f} s")
    assert not clean_engine.api.networks(filters={"label": [f"{naming.CLUSTER}={CLUSTER}"]})


async def test_an_overlapping_subnet_fails_the_deploy_with_the_engines_reason(
    rt: DockerRuntime,
    clean_engine: docker.DockerClient,
    test_image: TestImages,  # noqa: F811
) -> None:
    block = next(POD_RANGE.subnets(new_prefix=block_prefix(1)))
    # Something else on the host already uses addresses of the block (made deterministic here:
    # a network outside ccs on the enclosing /24).
    clean_engine.api.create_network(
        f"{CLUSTER}-squatter", driver="bridge",
        ipam={"Driver": "default", "Config": [{"Subnet": str(block.supernet(new_prefix=24))}]},
    )
    c = assignment("overlap", test_image.busybox, str(block))
    with pytest.raises(NetworkFailed) as failure:
        await rt.prepare(c)
    err: RuntimeFailure = failure.value
    assert err.permanent
    assert "overlaps" in err.reason

    # What the agent reports for it (executor._fail_or_raise), and the verdict on it.
    st = status.build_status(c, None, state=pb.CONTAINER_STATE_FAILED, message=err.reason, node="node-1",
                             address="127.0.0.1", now=time.time())
    st.failure_reason = err.failure_reason  # type: ignore[assignment]
    assert st.failure_reason == pb.FAILURE_REASON_NETWORK
    c.status.CopyFrom(st)
    svc = pb.Service(cluster=CLUSTER, application="overlap", generation=1,
                     spec=pb.ServiceSpec(image=test_image.busybox, replicas=1),
                     status=pb.ServiceStatus(desired=1))
    svc.meta.name = "web"
    app = pb.Application(cluster=CLUSTER)
    app.meta.name = "overlap"
    snapshot = Snapshot(app=app, services={"web": svc}, containers={("web", c.meta.name): c}, nodes={})
    verdict = assess(snapshot, now=time.time(), unplaced_since={}, grace=5.0)
    assert isinstance(verdict.failure, DeployFailed)
    assert verdict.failure.reason == err.reason


async def test_a_block_handed_out_again_replaces_the_stale_bridge_that_still_holds_it(
    rt: DockerRuntime,
    clean_engine: docker.DockerClient,
    test_image: TestImages,  # noqa: F811
) -> None:
    """The control plane freed the block of an app that left this node, and gave it to another,
    before the agent removed the old bridge: the new network replaces the stale one. A stale
    bridge that still has a container is left alone (and the create fails as before)."""
    block = str(list(POD_RANGE.subnets(new_prefix=block_prefix(1)))[40])  # clear of the squatter's /24
    await rt.prepare(assignment("left", test_image.busybox, block))  # its bridge, now stale
    await rt.prepare(assignment("arrived", test_image.busybox, block))
    assert network_subnet(clean_engine, "arrived") == block
    assert not clean_engine.api.networks(names=[naming.network_name(CLUSTER, "left")])

    busy = str(list(POD_RANGE.subnets(new_prefix=block_prefix(1)))[41])
    holder = assignment("holder", test_image.busybox, busy, command=("sleep", "3600"))
    await rt.prepare(holder)
    docker_id = await rt.create(holder)
    try:
        with pytest.raises(NetworkFailed, match="overlaps"):
            await rt.prepare(assignment("blocked", test_image.busybox, busy))
        assert network_subnet(clean_engine, "holder") == busy
    finally:
        await rt.remove(docker_id, volumes=True)


async def test_a_further_blocks_bridge_is_its_own_and_replaced_when_freed_while_the_app_runs_on_another(
    rt: DockerRuntime,
    clean_engine: docker.DockerClient,
    test_image: TestImages,  # noqa: F811
) -> None:
    """A container of the pair's second block joins a bridge of its own (`<app network>.1`) with
    that block as subnet, and reports its address under the Compose network. Once the block is
    freed (its container gone) and index 1 comes back with another subnet, the stale bridge is
    replaced although the application still has a container (created, not running) on its
    first block: "unused" is per bridge, not per application."""
    blocks = list(POD_RANGE.subnets(new_prefix=block_prefix(1)))
    first, second, third = str(blocks[80]), str(blocks[81]), str(blocks[82])
    holder = assignment("grown", test_image.busybox, first, command=("sleep", "3600"))
    await rt.prepare(holder)
    holder_id = await rt.create(holder)  # created only: it joins its bridge when it starts
    on_second = assignment("grown", test_image.busybox, second, command=("sleep", "3600"))
    on_second.meta.name = "web-2"
    on_second.subnet_index[DEFAULT_NETWORK] = 1
    await rt.prepare(on_second)
    docker_id = await rt.create(on_second)
    try:
        await rt.start(docker_id)
        engine_name = naming.network_name(CLUSTER, "grown", DEFAULT_NETWORK, 1)
        assert engine_name == f"ccs-{CLUSTER}_grown.1"
        assert str(clean_engine.api.inspect_network(engine_name)["IPAM"]["Config"][0]["Subnet"]) == second
        assert network_subnet(clean_engine, "grown") == first
        running = await rt.inspect(docker_id)
        assert running is not None
        assert dict(running.addresses) == {DEFAULT_NETWORK: str(ipaddress.IPv4Network(second).network_address + 2)}
    finally:
        await rt.remove(docker_id, volumes=True)
    again = assignment("grown", test_image.busybox, third)
    again.meta.name = "web-3"
    again.subnet_index[DEFAULT_NETWORK] = 1
    try:
        await rt.prepare(again)  # block 1 handed out again, with another subnet
        assert str(clean_engine.api.inspect_network(engine_name)["IPAM"]["Config"][0]["Subnet"]) == third
        assert network_subnet(clean_engine, "grown") == first  # the first block's bridge kept: in use
    finally:
        await rt.remove(holder_id, volumes=True)
        await rt.remove_app_resources(CLUSTER, "grown", volumes=True)
    assert not clean_engine.api.networks(names=[engine_name])


@pytest.mark.parametrize("kind", ["docker", "fake"])
async def test_a_running_container_reports_its_address_in_the_block(
    kind: str,
    rt: DockerRuntime,
    test_image: TestImages,  # noqa: F811
) -> None:
    """The engine and the hollow-node fake agree: a running container's address on the app
    network is the first after the gateway's in the control plane's block, reported under
    the Compose network name; a stopped one has none."""
    runtime: Runtime = rt if kind == "docker" else FakeRuntime()
    block = str(list(POD_RANGE.subnets(new_prefix=block_prefix(1)))[60])  # clear of the other tests'
    c = assignment(f"addr-{kind}", test_image.busybox, block, command=("sleep", "3600"))
    await runtime.prepare(c)
    docker_id = await runtime.create(c)
    try:
        await runtime.start(docker_id)
        running = await runtime.inspect(docker_id)
        assert running is not None
        expected = str(ipaddress.IPv4Network(block).network_address + 2)  # .1 is the gateway
        assert dict(running.addresses) == {DEFAULT_NETWORK: expected}
        st = status.build_status(c, running, node="node-1", address="127.0.0.1", now=time.time())
        assert dict(st.addresses) == {DEFAULT_NETWORK: expected}
        await runtime.stop(docker_id, 1)
        stopped = await runtime.inspect(docker_id)
        assert stopped is not None and dict(stopped.addresses) == {}
    finally:
        await runtime.remove(docker_id, volumes=True)
        await runtime.remove_app_resources(CLUSTER, c.application, volumes=True)


@pytest.mark.parametrize("kind", ["docker", "fake"])
async def test_a_host_network_container_is_seen_on_the_nodes_network(
    kind: str,
    rt: DockerRuntime,
    test_image: TestImages,  # noqa: F811
) -> None:
    """The engine and the fake agree on a `network_mode: host` container: it is on the engine's
    "host" network with no address of its own and none on an application network (the agent
    probes it on 127.0.0.1 because of that "host" entry: probe_check.target_address)."""
    runtime: Runtime = rt if kind == "docker" else FakeRuntime()
    c = assignment(f"hostnet-{kind}", test_image.busybox, "", command=("sleep", "3600"))
    del c.subnets[DEFAULT_NETWORK]
    c.spec.network_mode = "host"
    await runtime.prepare(c)
    docker_id = await runtime.create(c)
    try:
        await runtime.start(docker_id)
        running = await runtime.inspect(docker_id)
        assert running is not None
        assert (dict(running.networks), dict(running.addresses)) == ({"host": ""}, {})
    finally:
        await runtime.remove(docker_id, volumes=True)
        await runtime.remove_app_resources(CLUSTER, c.application, volumes=True)

