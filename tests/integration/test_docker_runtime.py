"""DockerRuntime against the real Docker Engine: every option applied, idempotent create, events,
stop, failures with their reasons, logs, adoption by a new agent (the app network and probes are
in test_docker_runtime_network.py). Everything made here carries a per-session cluster label and
is removed at the end, so sessions of other engineers on the same daemon are left alone.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
from collections.abc import AsyncIterator
from pathlib import Path

import docker
import pytest

from ccs.v1 import resources_pb2 as pb
from nodeagent.runtime import EventKind, ImageNotFound, StartFailed, State, naming
from nodeagent.runtime.docker_engine import DockerRuntime
from tests.conftest import free_port

from .docker_fixtures import TestImages, docker_client, test_image  # noqa: F401
from .runtime_helpers import (  # noqa: F401 (clean_engine and rt are fixtures)
    CLUSTER,
    WAIT,
    clean_engine,
    container,
    launch,
    next_event,
    rt,
    wait_observed,
)

pytestmark = [pytest.mark.docker, pytest.mark.timeout(180)]


# ------------------------------------------------------------------------------ tests


async def test_create_applies_every_option(
    rt: DockerRuntime,  # noqa: F811
    docker_client: docker.DockerClient,  # noqa: F811
    test_image: TestImages,  # noqa: F811
    tmp_path: Path,
) -> None:
    host_port = free_port()
    (tmp_path / "conf.txt").write_text("from the host\n")
    c = container(
        "shop",
        "web",
        test_image.webapp_v1,
        environment={"MODE": "test", "GREETING": "hello world"},
        ports=[pb.PortSpec(target=8080, published=host_port, protocol="tcp"), pb.PortSpec(target=9000)],
        volumes=[
            pb.VolumeMount(type="volume", source="data", target="/data"),
            pb.VolumeMount(type="bind", source=str(tmp_path), target="/conf", read_only=True),
            pb.VolumeMount(type="tmpfs", target="/scratch"),
            pb.VolumeMount(type="volume", target="/cache"),
        ],
        labels={"team": "payments"},
        healthcheck=pb.HealthCheck(
            test=["CMD-SHELL", "wget -q -O- http://127.0.0.1:8080/health"],
            interval_ms=500,
            timeout_ms=2000,
            start_period_ms=1000,
            retries=3,
        ),
        resources=pb.Resources(limits=pb.ResourceAmounts(cpus=0.5, memory_bytes=64 << 20, pids=100)),
        stop_grace_period_ms=5000,
        stop_signal="SIGTERM",
        user="0:0",
        working_dir="/www",
        hostname="web-host",
    )
    docker_id = await launch(rt, c)
    raw = docker_client.api.inspect_container(docker_id)
    config, host = raw["Config"], raw["HostConfig"]

    assert raw["Name"] == f"/{naming.container_name(c)}"
    assert {"MODE=test", "GREETING=hello world"} <= set(config["Env"])
    assert config["Labels"]["team"] == "payments"
    assert {k: v for k, v in config["Labels"].items() if k.startswith("ccs.")} == {
        "ccs.managed": "true",
        "ccs.cluster": CLUSTER,
        "ccs.app": "shop",
        "ccs.service": "web",
        "ccs.container": "web-1",
        "ccs.container-id": c.meta.id,
        "ccs.generation": "1",
        "ccs.app-revision": "7",
    }
    assert config["Healthcheck"] == {
        "Test": ["CMD-SHELL", "wget -q -O- http://127.0.0.1:8080/health"],
        "Interval": 500_000_000,
        "Timeout": 2_000_000_000,
        "StartPeriod": 1_000_000_000,
        "Retries": 3,
    }
    assert (config["User"], config["WorkingDir"], config["Hostname"]) == ("0:0", "/www", "web-host")
    assert (config["StopSignal"], config["StopTimeout"]) == ("SIGTERM", 5)
    assert set(config["ExposedPorts"]) == {"8080/tcp", "9000/tcp"}
    assert host["PortBindings"] == {"8080/tcp": [{"HostIp": "127.0.0.1", "HostPort": str(host_port)}]}
    assert (host["NanoCpus"], host["Memory"], host["PidsLimit"]) == (500_000_000, 64 << 20, 100)
    assert host["RestartPolicy"]["Name"] == "no"
    mounts = {m["Destination"]: m for m in raw["Mounts"]}
    assert mounts["/data"]["Name"] == naming.volume_name(CLUSTER, "shop", "data")
    assert mounts["/conf"]["Source"] == str(tmp_path) and mounts["/conf"]["RW"] is False
    assert mounts["/cache"]["Type"] == "volume" and mounts["/cache"]["Name"] != naming.volume_name(CLUSTER, "shop", "data")
    assert any(m["Target"] == "/scratch" and m["Type"] == "tmpfs" for m in host["Mounts"])
    network = naming.network_name(CLUSTER, "shop")
    assert "web" in raw["NetworkSettings"]["Networks"][network]["Aliases"]

    observed = await wait_observed(rt, docker_id, lambda o: o.health == "healthy", "healthy")
    assert observed.state == State.CONTAINER_STATE_HEALTHY
    assert observed.container_id == c.meta.id and observed.generation == 1 and observed.app_revision == 7
    assert observed.networks[network]
    assert any(p.target == 8080 and p.host_port == host_port for p in observed.ports)
    mounted = await rt.exec(docker_id, ["cat", "/conf/conf.txt"], timeout_seconds=10)
    assert (mounted.exit_code, mounted.output) == (0, b"from the host\n")


async def test_create_is_idempotent_per_ccs_container(rt: DockerRuntime, test_image: TestImages) -> None:  # noqa: F811
    c = container("idem", "web", test_image.busybox, command=["sleep", "30"])
    await rt.prepare(c)
    first = await rt.create(c)
    assert await rt.create(c) == first
    await rt.remove(first, volumes=True)
    await rt.remove(first, volumes=True)  # removing a gone container is fine too
    assert await rt.inspect(first) is None


async def test_events_start_health_die_with_exit_code(rt: DockerRuntime, test_image: TestImages) -> None:  # noqa: F811
    events = rt.events()
    try:
        healthy = container(
            "ev",
            "sleeper",
            test_image.busybox,
            command=["sleep", "300"],
            healthcheck=pb.HealthCheck(test=["CMD", "true"], interval_ms=200),
        )
        sleeper = await launch(rt, healthy)
        start = await next_event(events, lambda e: e.docker_id == sleeper and e.kind is EventKind.START)
        assert start.container_id == healthy.meta.id
        health = await next_event(
            events, lambda e: e.docker_id == sleeper and e.kind is EventKind.HEALTH_STATUS
        )
        assert health.health == "healthy"

        quitter = await launch(
            rt, container("ev", "quitter", test_image.busybox, command=["sh", "-c", "exit 3"])
        )
        die = await next_event(events, lambda e: e.docker_id == quitter and e.kind is EventKind.DIE)
        assert die.exit_code == 3
        observed = await rt.inspect(quitter)
        assert observed is not None
        assert (observed.state, observed.exit_code) == (State.CONTAINER_STATE_EXITED, 3)
        assert observed.message == "exited with code 3"

        await rt.stop(sleeper, grace_seconds=1)  # sleep as PID 1 ignores SIGTERM: SIGKILLed
        die = await next_event(events, lambda e: e.docker_id == sleeper and e.kind is EventKind.DIE)
        assert die.exit_code == 137
        await rt.remove(sleeper, volumes=True)
        destroy = await next_event(events, lambda e: e.docker_id == sleeper and e.kind is EventKind.DESTROY)
        assert destroy.container_id == healthy.meta.id
    finally:
        await events.aclose()


async def test_webapp_stops_promptly_on_sigterm(rt: DockerRuntime, test_image: TestImages) -> None:  # noqa: F811
    """The test image's trap makes SIGTERM a clean exit (0), not a SIGKILL after the grace."""
    docker_id = await launch(rt, container("sig", "web", test_image.webapp_v2))
    await wait_observed(rt, docker_id, lambda o: o.state == State.CONTAINER_STATE_RUNNING, "running")
    await rt.stop(docker_id, grace_seconds=30)
    observed = await rt.inspect(docker_id)
    assert observed is not None
    assert (observed.state, observed.exit_code) == (State.CONTAINER_STATE_EXITED, 0)


async def test_missing_image_fails_with_clear_reason(rt: DockerRuntime, test_image: TestImages) -> None:  # noqa: F811
    c = container("missing", "web", test_image.missing)
    pulls: list[str] = []
    with pytest.raises(ImageNotFound) as err:
        await rt.prepare(c, on_pull=pulls.append)
    assert err.value.reason.startswith("image not found: local/nope:1")
    assert err.value.permanent
    assert pulls == ["local/nope:1"]
    with pytest.raises(ImageNotFound, match="image not found: local/nope:1"):
        await rt.create(c)


async def test_start_failure_is_reported(rt: DockerRuntime, test_image: TestImages) -> None:  # noqa: F811
    c = container("bad", "web", test_image.busybox, command=["/no/such/binary"])
    await rt.prepare(c)
    docker_id = await rt.create(c)
    with pytest.raises(StartFailed, match="no/such/binary"):
        await rt.start(docker_id)
    observed = await rt.inspect(docker_id)
    assert observed is not None
    assert observed.state == State.CONTAINER_STATE_FAILED
    assert "no/such/binary" in observed.message


async def test_list_managed_adopts_after_agent_restart(rt: DockerRuntime, test_image: TestImages) -> None:  # noqa: F811
    specs = [
        container("adopt", "worker", test_image.busybox, slot=i, command=["sleep", "300"]) for i in (1, 2)
    ]
    ids = {await launch(rt, c) for c in specs}
    await rt.aclose()  # the "old agent" goes away; its containers keep running

    reborn = DockerRuntime(bind_address="127.0.0.1", cluster=CLUSTER)
    try:
        adopted = {o.docker_id: o for o in await reborn.list_managed() if o.labels.get("ccs.app") == "adopt"}
        assert set(adopted) == ids
        assert {o.container_id for o in adopted.values()} == {c.meta.id for c in specs}
        assert all(o.state == State.CONTAINER_STATE_RUNNING for o in adopted.values())
        others = DockerRuntime(cluster=f"{CLUSTER}-other")
        try:
            assert await others.list_managed() == []  # scoped by cluster
        finally:
            await others.aclose()
    finally:
        await reborn.aclose()


async def test_logs_tail_and_follow(rt: DockerRuntime, test_image: TestImages) -> None:  # noqa: F811
    script = "echo one; echo two; echo three; until [ -f /tmp/go ]; do sleep 0.1; done; echo four; sleep 300"
    docker_id = await launch(
        rt, container("logs", "talker", test_image.busybox, command=["sh", "-c", script])
    )

    async def read_until(stream: AsyncIterator[bytes], marker: bytes) -> bytes:
        seen = b""
        async with asyncio.timeout(WAIT):
            async for chunk in stream:
                seen += chunk
                if marker in seen:
                    return seen
        return seen

    async with contextlib.aclosing(rt.logs(docker_id, follow=True, tail=None, since=None)) as follow:
        assert await read_until(follow, b"three\n") == b"one\ntwo\nthree\n"
        assert (await rt.exec(docker_id, ["touch", "/tmp/go"], timeout_seconds=10)).exit_code == 0
        assert await read_until(follow, b"four\n") == b"four\n"

    tail = b"".join([chunk async for chunk in rt.logs(docker_id, follow=False, tail=2, since=None)])
    assert tail == b"three\nfour\n"


async def test_info_reports_the_host(rt: DockerRuntime) -> None:  # noqa: F811
    info = await rt.info()
    assert info.cpus == os.cpu_count()
    assert info.memory_bytes > 0 and info.docker_version and info.os == "linux" and info.arch


async def test_out_of_memory_is_a_failure_with_a_reason(rt: DockerRuntime, test_image: TestImages) -> None:  # noqa: F811
    events = rt.events()
    try:
        hog = container(
            "oom",
            "hog",
            test_image.busybox,
            command=["sh", "-c", 'x=$(head -c 60000000 /dev/zero | tr "\\0" a); echo survived'],
            resources=pb.Resources(limits=pb.ResourceAmounts(memory_bytes=6 << 20)),
        )
        docker_id = await launch(rt, hog)
        oom = await next_event(events, lambda e: e.docker_id == docker_id and e.kind is EventKind.OOM)
        assert oom.container_id == hog.meta.id
        await next_event(events, lambda e: e.docker_id == docker_id and e.kind is EventKind.DIE)
    finally:
        await events.aclose()
    observed = await rt.inspect(docker_id)
    assert observed is not None and observed.oom_killed
    assert observed.state == State.CONTAINER_STATE_FAILED
    assert observed.message.startswith("out of memory: killed by the kernel")


async def test_with_the_node_resolver_containers_use_it_and_the_network_hook_runs_before_start(
    clean_engine: docker.DockerClient,  # noqa: F811
    test_image: TestImages,  # noqa: F811
) -> None:
    """With `dns` (the agent's --resolver-address) containers get it as DNS server and no engine
    alias; `on_network_created` runs once per created network, before any container is made on
    it (nodeagent/network puts its nat rule back above Docker's new MASQUERADE rule there)."""
    selector = {"label": [f"{naming.CLUSTER}={CLUSTER}", f"{naming.APP}=resolved"]}
    seen: list[int] = []

    async def created() -> None:
        seen.append(len(clean_engine.api.containers(all=True, filters=selector)))

    runtime = DockerRuntime(bind_address="127.0.0.1", cluster=CLUSTER, dns=("169.254.20.53",), on_network_created=created)
    try:
        c = container("resolved", "web", test_image.busybox, command=["sleep", "300"],
                      networks=[pb.ServiceNetwork(name="default", aliases=["www"])])
        first = await launch(runtime, c)
        second = await launch(runtime, container("resolved", "web", test_image.busybox, slot=2, command=["sleep", "300"]))
        assert seen == [0]  # one network, hooked before its first container existed
        for docker_id in (first, second):
            raw = clean_engine.api.inspect_container(docker_id)
            assert raw["HostConfig"]["Dns"] == ["169.254.20.53"]
            aliases = raw["NetworkSettings"]["Networks"][naming.network_name(CLUSTER, "resolved")]["Aliases"] or []
            assert "web" not in aliases and "www" not in aliases
    finally:
        await runtime.aclose()
