"""FakeRuntime: the same contract as DockerRuntime, in memory, cheap enough for hollow nodes."""

from __future__ import annotations

import asyncio
import tracemalloc
from collections.abc import AsyncIterator

import pytest

from ccs.v1 import resources_pb2 as pb
from nodeagent.runtime import (
    ContainerNotFound,
    EventKind,
    FakeRuntime,
    ImageNotFound,
    InvalidSpec,
    Runtime,
    RuntimeEvent,
    RuntimeFailure,
    State,
    VolumeMissing,
)
from nodeagent.runtime.docker_engine import DockerRuntime


def make(app: str = "shop", service: str = "web", slot: int = 1, **spec: object) -> pb.Container:
    c = pb.Container(
        meta=pb.Meta(id=f"{app}-{service}-{slot:03}", name=f"{service}-{slot}"),
        cluster="hollow",
        application=app,
        service=service,
        slot=slot,
        spec_generation=2,
    )
    c.spec.CopyFrom(pb.ServiceSpec(**{"image": "local/webapp:v1", **spec}))  # type: ignore[arg-type]
    return c


async def take(events: AsyncIterator[RuntimeEvent], n: int) -> list[tuple[EventKind, str, int | None]]:
    out = []
    for _ in range(n):
        e = await asyncio.wait_for(events.__anext__(), 5)
        out.append((e.kind, e.health, e.exit_code))
    return out


def as_runtimes(docker_runtime: DockerRuntime, fake: FakeRuntime) -> tuple[Runtime, Runtime]:
    """Not a test: mypy checks here that both implementations match the Protocol exactly."""
    return docker_runtime, fake


def test_fake_satisfies_the_runtime_protocol() -> None:
    assert isinstance(FakeRuntime(), Runtime)


async def test_lifecycle_and_events() -> None:
    rt = FakeRuntime()
    events = rt.events()
    c = make(
        healthcheck=pb.HealthCheck(test=["CMD", "true"]), volumes=[pb.VolumeMount(source="d", target="/d")]
    )
    pulls: list[str] = []
    await rt.prepare(c, on_pull=pulls.append)
    assert pulls == [] and rt.networks == {"ccs-hollow_shop"} and set(rt.volumes) == {"ccs-hollow_shop_d"}
    docker_id = await rt.create(c)
    assert await rt.create(c) == docker_id  # idempotent per ccs container
    impostor = make()
    impostor.meta.id = c.meta.id + "-2"  # a different ccs container whose docker name would clash
    with pytest.raises(RuntimeFailure, match="name already in use"):
        await rt.create(impostor)
    created = await rt.inspect(docker_id)
    assert created is not None and created.state == State.CONTAINER_STATE_STARTING
    await rt.start(docker_id)
    running = await rt.inspect(docker_id)
    assert running is not None
    assert (running.state, running.container_id, running.generation) == (
        State.CONTAINER_STATE_HEALTHY,
        c.meta.id,
        2,
    )
    await rt.stop(docker_id, grace_seconds=10)
    stopped = await rt.inspect(docker_id)
    assert stopped is not None and (stopped.state, stopped.exit_code) == (State.CONTAINER_STATE_EXITED, 0)
    await rt.remove(docker_id, volumes=True)
    assert await rt.inspect(docker_id) is None
    assert await take(events, 4) == [
        (EventKind.START, "", None),
        (EventKind.HEALTH_STATUS, "healthy", None),
        (EventKind.DIE, "", 0),
        (EventKind.DESTROY, "", None),
    ]
    await rt.remove_app_resources("hollow", "shop", volumes=True)
    assert rt.networks == set() and rt.volumes == {}


async def test_fault_injection() -> None:
    rt = FakeRuntime(missing_images={"local/nope:1"}, unhealthy_images={"local/webapp:bad"})
    with pytest.raises(ImageNotFound, match=r"^image not found: local/nope:1"):
        await rt.prepare(make(image="local/nope:1"))
    bad = await rt.create(make(image="local/webapp:bad", healthcheck=pb.HealthCheck(test=["CMD", "x"])))
    await rt.start(bad)
    observed = await rt.inspect(bad)
    assert observed is not None and observed.state == State.CONTAINER_STATE_UNHEALTHY
    assert (await rt.exec(bad, ["check"], timeout_seconds=1)).exit_code == 1
    rt.crash(bad, exit_code=2)
    crashed = await rt.inspect(bad)
    assert crashed is not None and (crashed.state, crashed.exit_code) == (State.CONTAINER_STATE_EXITED, 2)
    with pytest.raises(ContainerNotFound):
        await rt.start("0" * 64)
    with pytest.raises(InvalidSpec, match=r"spec\.ports"):  # same validation as the real runtime
        await rt.prepare(make(ports=[pb.PortSpec(target=0)]))


async def test_always_pull_reports_pulling() -> None:
    rt = FakeRuntime()
    pulls: list[str] = []
    await rt.prepare(make(always_pull=True), on_pull=pulls.append)
    assert pulls == ["local/webapp:v1"] == rt.pulled


async def test_an_external_volume_must_exist_and_is_never_created() -> None:
    rt = FakeRuntime(hostname="hollow-3")
    ext = pb.VolumeMount(source="data", target="/d", volume=pb.NamedVolume(name="data", external=True,
                                                                            volume_name="handmade"))
    with pytest.raises(VolumeMissing, match="external volume 'handmade' does not exist on node hollow-3") as info:
        await rt.prepare(make(volumes=[ext]))
    assert not info.value.permanent and "handmade" not in rt.volumes
    rt.volumes["handmade"] = ("", "")  # made by an operator
    await rt.prepare(make(volumes=[ext]))


async def test_list_managed_and_logs() -> None:
    rt = FakeRuntime()
    ids = [await rt.create(make(slot=i)) for i in range(3)]
    assert sorted(o.docker_id for o in await rt.list_managed()) == sorted(ids)
    lines = [chunk async for chunk in rt.logs(ids[0], follow=False, tail=None, since=None)]
    assert lines == [b"ccs-shop-web-0-shop-web-000: hollow container started\n"]
    assert (await rt.info()).hostname == "hollow"


async def test_twenty_thousand_containers_in_500_runtimes_stay_small() -> None:
    tracemalloc.start()
    try:
        runtimes = [FakeRuntime(hostname=f"hollow-{n}") for n in range(500)]
        for n, rt in enumerate(runtimes):
            for slot in range(40):
                c = make(app=f"app{n % 7}", service="web", slot=slot)
                c.meta.id = f"{n}-{slot}"
                await rt.start(await rt.create(c))
        current, _ = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    counts = [len(await rt.list_managed()) for rt in runtimes]
    assert sum(counts) == 20_000
    assert current < 64 << 20, f"{current / 2**20:.1f} MiB for 20,000 hollow containers"


async def test_addresses_come_from_the_block_the_control_plane_gave() -> None:
    """As the engine does: the first address after the gateway's, one per running container,
    given back when the container stops; reported under the Compose network name."""
    rt = FakeRuntime()
    first, second = make(slot=1), make(slot=2)
    for c in (first, second):
        c.subnets["default"] = "10.128.0.16/28"
        await rt.prepare(c)
    a, b = await rt.create(first), await rt.create(second)
    created = await rt.inspect(a)
    assert created is not None and dict(created.addresses) == {}
    await rt.start(a)
    await rt.start(b)
    seen = [await rt.inspect(x) for x in (a, b)]
    assert [dict(o.addresses) for o in seen if o is not None] == [
        {"default": "10.128.0.18"}, {"default": "10.128.0.19"}]
    assert seen[0] is not None and dict(seen[0].networks) == {"ccs-hollow_shop": "10.128.0.18"}
    await rt.stop(a, grace_seconds=1)
    stopped = await rt.inspect(a)
    assert stopped is not None and dict(stopped.addresses) == {}
    with pytest.raises(RuntimeFailure, match="active endpoints"):
        await rt.remove_app_resources("hollow", "shop", volumes=False)
    await rt.start(a)  # its old address was free again
    again = await rt.inspect(a)
    assert again is not None and dict(again.addresses) == {"default": "10.128.0.18"}


async def test_a_full_block_fails_the_start() -> None:
    rt = FakeRuntime()
    containers = [make(slot=i) for i in range(1, 4)]
    for c in containers:
        c.subnets["default"] = "10.128.0.16/30"  # network, gateway, one container, broadcast
        await rt.prepare(c)
    ids = [await rt.create(c) for c in containers]
    await rt.start(ids[0])
    with pytest.raises(RuntimeFailure, match="no available IPv4 addresses"):
        await rt.start(ids[1])
