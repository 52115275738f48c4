"""DockerRuntime against the real Docker Engine: the application network (DNS by service name,
teardown of networks and volumes) and probes run against real containers through it.
Everything made here carries a per-session cluster label and is removed at the end.
"""

from __future__ import annotations

import asyncio
import ipaddress
import time
import uuid
from collections.abc import Callable
from dataclasses import replace
from typing import Any

import docker
import pytest

from ccs.v1 import resources_pb2 as pb
from nodeagent.probe_check import ProbeStatus, run_probe
from nodeagent.runtime import Observed, ResourceBusy, State, naming
from nodeagent.runtime.docker_engine import DockerRuntime
from tests.conftest import free_port

from .docker_fixtures import TestImages, docker_client, test_image  # noqa: F401
from .runtime_helpers import (  # noqa: F401 (clean_engine and rt are fixtures)
    CLUSTER,
    WAIT,
    clean_engine,
    container,
    launch,
    rt,
    wait_observed,
)

pytestmark = [pytest.mark.docker, pytest.mark.timeout(180)]


# ------------------------------------------------------------------------------ tests


async def test_app_network_dns_and_teardown(
    rt: DockerRuntime,  # noqa: F811
    docker_client: docker.DockerClient,  # noqa: F811
    test_image: TestImages,  # noqa: F811
) -> None:
    api = await launch(rt, container("dns", "api", test_image.webapp_v1))
    client = await launch(
        rt,
        container(
            "dns",
            "client",
            test_image.busybox,
            command=["sleep", "300"],
            volumes=[
                pb.VolumeMount(type="volume", target="/anon"),
                pb.VolumeMount(source="keep", target="/keep"),
            ],
        ),
    )
    network = naming.network_name(CLUSTER, "dns")
    assert [n["Name"] for n in docker_client.api.networks(names=[network])] == [network]
    await wait_observed(rt, api, lambda o: o.state == State.CONTAINER_STATE_RUNNING, "api running")

    reply = await rt.exec(client, ["wget", "-q", "-O-", "http://api:8080/"], timeout_seconds=20)
    assert (reply.exit_code, reply.output) == (0, b"v1\n")

    with pytest.raises(ResourceBusy):  # containers still attached
        await rt.remove_app_resources(CLUSTER, "dns", volumes=False)
    await rt.remove(api, volumes=False)
    await rt.remove(client, volumes=False)  # leaves the anonymous volume behind, as docker rm does
    app_volumes = {"label": [f"{naming.CLUSTER}={CLUSTER}", f"{naming.APP}=dns"]}
    assert len(docker_client.api.volumes(filters=app_volumes)["Volumes"]) == 2

    await rt.remove_app_resources(CLUSTER, "dns", volumes=False)
    assert docker_client.api.networks(names=[network]) == []
    left = [v["Name"] for v in docker_client.api.volumes(filters=app_volumes)["Volumes"]]
    assert left == [naming.volume_name(CLUSTER, "dns", "keep")]  # named volumes survive unless asked
    await rt.remove_app_resources(CLUSTER, "dns", volumes=True)
    assert not docker_client.api.volumes(filters=app_volumes)["Volumes"]


async def test_probes_against_real_containers(rt: DockerRuntime, test_image: TestImages) -> None:  # noqa: F811
    good_id = await launch(rt, container("probe", "good", test_image.webapp_v1))
    bad_id = await launch(
        rt,
        container(
            "probe", "bad", test_image.webapp_bad, ports=[pb.PortSpec(target=8080, published=free_port())]
        ),
    )
    good = await wait_observed(rt, good_id, lambda o: o.state == State.CONTAINER_STATE_RUNNING, "good running")
    bad = await wait_observed(rt, bad_id, lambda o: o.state == State.CONTAINER_STATE_RUNNING, "bad running")
    now = time.time()

    async def probe(observed: Observed, **fields: Any) -> tuple[ProbeStatus, str]:
        result = await run_probe(pb.Probe(timeout_seconds=5, **fields), observed, rt, now=now + 60)
        return result.status, result.message

    http_ok = await _eventually(lambda: probe(good, kind="http", port=8080, path="/health"))
    assert http_ok[0] is ProbeStatus.SUCCESS and http_ok[1].endswith(": 200")
    bad_http = await _eventually(
        lambda: probe(bad, kind="http", port=8080, path="/health"), want=ProbeStatus.FAILURE, listening=True
    )
    assert bad_http[1].endswith(": 500")
    assert (await probe(good, kind="tcp", port=8080))[0] is ProbeStatus.SUCCESS
    assert (await probe(good, kind="tcp", port=8081))[0] is ProbeStatus.FAILURE
    assert (await probe(good, kind="cmd", cmd=["test", "-f", "/www/health"]))[0] is ProbeStatus.SUCCESS
    failed = await probe(good, kind="cmd", cmd=["sh", "-c", "echo broken; exit 4"])
    assert failed == (ProbeStatus.FAILURE, "command exited 4: broken")

    early = await run_probe(pb.Probe(kind="tcp", port=8080, initial_delay_seconds=3600), good, rt, now=now)
    assert early.status is ProbeStatus.WAITING

    # Without the app network, the probe goes through the published port.
    published_only = replace(bad, networks={})
    assert (await probe(published_only, kind="http", port=8080, path="/"))[0] is ProbeStatus.SUCCESS


async def _eventually(
    attempt: Callable[[], Any], want: ProbeStatus = ProbeStatus.SUCCESS, *, listening: bool = False
) -> tuple[ProbeStatus, str]:
    """A server may need a moment after its process starts before it listens. With `listening`,
    a "connection refused" failure is that moment, not the answer: keep asking until the server
    answers (a failing server's own failure, such as its 500, is what the test wants)."""
    deadline = time.monotonic() + WAIT
    while True:
        result: tuple[ProbeStatus, str] = await attempt()
        refused = listening and "connection refused" in result[1]
        if (result[0] is want and not refused) or time.monotonic() > deadline:
            return result
        await asyncio.sleep(0.2)




async def test_a_container_joins_every_network_of_its_service_before_it_starts(
    rt: DockerRuntime,  # noqa: F811
    docker_client: docker.DockerClient,  # noqa: F811
    test_image: TestImages,  # noqa: F811
) -> None:
    """Every Compose network is a bridge of its own, on its own subnet: api (front and back)
    joins both before it starts and reports an address on each under its Compose name; db
    (back only) is reached from api by name and address, and not from web (front only) - the
    same address and port, in the same run. The application's removal takes both bridges."""
    third = 200 + uuid.uuid4().int % 50
    fourth = uuid.uuid4().int % 16 * 16
    front, back = f"10.{third}.{fourth}.0/28", f"10.{third}.{fourth + 1}.0/28"

    def on(c: pb.Container, **subnets: str) -> pb.Container:
        c.subnets.update(subnets)
        return c

    def nets(*names: str) -> list[pb.ServiceNetwork]:
        return [pb.ServiceNetwork(name=n) for n in names]

    sleeper = ["sleep", "300"]
    api = await launch(rt, on(container("multi", "api", test_image.busybox, command=sleeper,
                                        networks=nets("front", "back")), front=front, back=back))
    db = await launch(rt, on(container("multi", "db", test_image.webapp_v1, networks=nets("back")), back=back))
    web = await launch(rt, on(container("multi", "web", test_image.busybox, command=sleeper,
                                        networks=nets("front")), front=front))
    front_net, back_net = naming.network_name(CLUSTER, "multi", "front"), naming.network_name(CLUSTER, "multi", "back")
    for name, subnet in ((front_net, front), (back_net, back)):
        (found,) = docker_client.api.networks(names=[name])
        assert [c["Subnet"] for c in found["IPAM"]["Config"]] == [subnet]
        assert found["Labels"][naming.NETWORK] == name.rsplit("_", 1)[1]

    seen = await wait_observed(rt, api, lambda o: len(o.addresses) == 2, "api on both networks")
    assert set(seen.addresses) == {"front", "back"}
    assert ipaddress.IPv4Address(seen.addresses["front"]) in ipaddress.IPv4Network(front)
    assert ipaddress.IPv4Address(seen.addresses["back"]) in ipaddress.IPv4Network(back)
    db_ip = (await wait_observed(rt, db, lambda o: "back" in o.addresses, "db on back")).addresses["back"]
    await wait_observed(rt, web, lambda o: "front" in o.addresses, "web on front")

    reply = await rt.exec(api, ["timeout", "5", "wget", "-q", "-O-", "http://db:8080/"], timeout_seconds=20)
    assert (reply.exit_code, reply.output) == (0, b"v1\n")
    refused = await rt.exec(web, ["timeout", "3", "wget", "-q", "-O-", f"http://{db_ip}:8080/"], timeout_seconds=20)
    assert refused.exit_code != 0, "a container on front only reached db on back"
    reply = await rt.exec(api, ["timeout", "5", "wget", "-q", "-O-", f"http://{db_ip}:8080/"], timeout_seconds=20)
    assert (reply.exit_code, reply.output) == (0, b"v1\n")  # paired: the same address and port, allowed

    for docker_id in (api, db, web):
        await rt.remove(docker_id, volumes=False)
    await rt.remove_app_resources(CLUSTER, "multi", volumes=False)
    assert docker_client.api.networks(names=[front_net]) == [] and docker_client.api.networks(names=[back_net]) == []


async def test_replicas_prepared_at_once_share_one_image_check_and_one_network_check(
    clean_engine: docker.DockerClient,  # noqa: F811
    test_image: TestImages,  # noqa: F811
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A deploy's containers run `prepare` at the same moment: they share one image inspect
    and one check of the application network (shared_calls) instead of making them one after
    the other under a lock, and every one of them still starts on that network. Nothing is
    remembered past the shared call: a container prepared later asks the engine again."""
    client = docker.from_env()
    calls: list[tuple[str, tuple[Any, ...], dict[str, Any]]] = []
    for method in ("inspect_image", "networks", "create_network"):
        real = getattr(client.api, method)

        def counted(*args: Any, _real: Callable[..., Any] = real, _method: str = method, **kwargs: Any) -> Any:
            calls.append((_method, args, kwargs))
            return _real(*args, **kwargs)

        monkeypatch.setattr(client.api, method, counted)
    runtime = DockerRuntime(client, bind_address="127.0.0.1", cluster=CLUSTER)
    net = naming.network_name(CLUSTER, "fleet")
    subnet = f"10.{200 + uuid.uuid4().int % 50}.{uuid.uuid4().int % 16 * 16}.0/28"

    def made(method: str) -> int:
        """Calls of `method` about this test's image or network (the legacy name's check aside)."""
        return sum(1 for m, args, kwargs in calls if m == method and (
            args[:1] == (test_image.busybox,) or kwargs.get("names") == [net] or args[:1] == (net,)))

    replicas = []
    for slot in range(8):
        c = container("fleet", "web", test_image.busybox, slot=slot, command=["sleep", "300"])
        c.subnets["default"] = subnet
        replicas.append(c)
    try:
        await asyncio.gather(*(runtime.prepare(c) for c in replicas))
        assert (made("inspect_image"), made("networks"), made("create_network")) == (1, 1, 1)

        await runtime.prepare(replicas[0])
        assert (made("inspect_image"), made("networks"), made("create_network")) == (2, 2, 1)

        ids = await asyncio.gather(*(runtime.create(c) for c in replicas))
        await asyncio.gather(*(runtime.start(d) for d in ids))
        for docker_id in ids:
            seen = await wait_observed(runtime, docker_id, lambda o: "default" in o.addresses, "on the app network")
            assert ipaddress.IPv4Address(seen.addresses["default"]) in ipaddress.IPv4Network(subnet)
            await runtime.remove(docker_id, volumes=False)
        await runtime.remove_app_resources(CLUSTER, "fleet", volumes=False)
    finally:
        await runtime.aclose()
