"""Compose keys of issue 11 on the real Docker Engine: template -> parser -> agent runtime ->
container, read back with `docker inspect` and checked from inside the container.

The narrowing keys need no policy; the privileged ones are what a cluster whose policy allows
them deploys (the policy itself is checked by the API: tests/integration/test_cluster_policy.py).
Everything made here carries this module's cluster label and is removed at the end.
"""

from __future__ import annotations

import asyncio
import json
import os
import textwrap
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import docker
import pytest

from ccs.v1 import resources_pb2 as pb
from controlplane.compose import ParsedTemplate, parse_template
from nodeagent.runtime import InvalidSpec, State
from nodeagent.runtime.docker_engine import DockerRuntime

from .docker_fixtures import TestImages, docker_client, remove_cluster_objects, test_image  # noqa: F401

pytestmark = [pytest.mark.docker, pytest.mark.timeout(180)]

CLUSTER = f"ck{uuid.uuid4().hex[:8]}"
WAIT = 60.0
# Denies mkdir, so the profile's effect shows from inside the container.
SECCOMP = {"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO"}]}
LOOP = "trap 'echo got-INT; exit 0' INT; echo ready; while true; do sleep 0.1; done"


@pytest.fixture(scope="module")
def clean_engine(docker_client: docker.DockerClient) -> Iterator[docker.DockerClient]:  # noqa: F811
    try:
        yield docker_client
    finally:
        remove_cluster_objects(docker_client, CLUSTER)


@pytest.fixture
async def rt(clean_engine: docker.DockerClient, test_image: TestImages) -> AsyncIterator[DockerRuntime]:  # noqa: F811
    runtime = DockerRuntime(bind_address="127.0.0.1", cluster=CLUSTER)
    try:
        yield runtime
    finally:
        await runtime.aclose()


def parse(text: str) -> ParsedTemplate:
    return parse_template(textwrap.dedent(text), env={}, files={}, app_name="keys")


def assignment(spec: pb.ServiceSpec, service: str) -> pb.Container:
    c = pb.Container(
        meta=pb.Meta(id=uuid.uuid4().hex, name=f"{service}-1"), cluster=CLUSTER, application="keys",
        service=service, node="node-1", slot=1, spec_generation=1, desired_state=pb.DESIRED_STATE_RUNNING,
    )
    c.spec.CopyFrom(spec)
    return c


async def launch(rt: DockerRuntime, c: pb.Container) -> str:
    await rt.prepare(c)
    docker_id = await rt.create(c)
    await rt.start(docker_id)
    deadline = time.monotonic() + WAIT
    while (observed := await rt.inspect(docker_id)) is not None and observed.state != State.CONTAINER_STATE_RUNNING:
        assert time.monotonic() < deadline, f"not running: {observed.message}"
        await asyncio.sleep(0.1)
    return docker_id


async def sh(rt: DockerRuntime, docker_id: str, script: str) -> tuple[int, str]:
    result = await rt.exec(docker_id, ["sh", "-c", script], timeout_seconds=20)
    return result.exit_code, result.output.decode(errors="replace")


async def test_narrowing_and_harmless_keys_have_their_effect(
    rt: DockerRuntime, clean_engine: docker.DockerClient, test_image: TestImages, tmp_path: Path,  # noqa: F811
) -> None:
    profile = tmp_path / "seccomp.json"
    profile.write_text(json.dumps(SECCOMP))
    parsed = parse(f"""
        services:
          web:
            image: {test_image.busybox}
            command: ["sh", "-c", "{LOOP}"]
            cap_drop: [NET_RAW]
            cap_add: [NET_BIND_SERVICE]
            security_opt: ["no-new-privileges:true", "seccomp={profile}"]
            read_only: true
            ulimits:
              nofile: {{soft: 1000, hard: 2000}}
              nproc: 500
            shm_size: 32m
            sysctls:
              net.core.somaxconn: 777
              kernel.shmmni: 2048
            extra_hosts: ["db.local:10.0.0.7", "gw=host-gateway"]
            dns: [9.9.9.9]
            dns_search: [example.com]
            dns_opt: ["ndots:2"]
            group_add: ["1234"]
            tmpfs: ["/run:size=64m,mode=1770"]
            stop_signal: SIGINT
            init: true
            mem_limit: 64m
            mem_reservation: 32m
            cpus: 0.5
            cpu_shares: 512
            pids_limit: 100
            oom_score_adj: 100
        """)
    assert parsed.privileged == []  # nothing here needs the cluster's policy
    docker_id = await launch(rt, assignment(parsed.services["web"], "web"))
    raw = clean_engine.api.inspect_container(docker_id)
    config, host = raw["Config"], raw["HostConfig"]

    assert (host["CapDrop"], host["CapAdd"]) == (["CAP_NET_RAW"], ["CAP_NET_BIND_SERVICE"])
    assert host["SecurityOpt"][0] == "no-new-privileges"
    assert json.loads(host["SecurityOpt"][1].removeprefix("seccomp=")) == SECCOMP  # the file's content
    assert host["ReadonlyRootfs"] is True
    assert sorted((u["Name"], u["Soft"], u["Hard"]) for u in host["Ulimits"]) == [
        ("nofile", 1000, 2000), ("nproc", 500, 500)]
    assert host["ShmSize"] == 32 << 20
    assert host["Sysctls"] == {"net.core.somaxconn": "777", "kernel.shmmni": "2048"}
    assert host["ExtraHosts"] == ["db.local:10.0.0.7", "gw:host-gateway"]
    assert (host["Dns"], host["DnsSearch"], host["DnsOptions"]) == (["9.9.9.9"], ["example.com"], ["ndots:2"])
    assert host["GroupAdd"] == ["1234"]
    assert host["Tmpfs"] == {"/run": "size=64m,mode=1770"}
    assert (config["StopSignal"], host["Init"]) == ("SIGINT", True)
    assert (host["Memory"], host["MemoryReservation"], host["NanoCpus"]) == (64 << 20, 32 << 20, 500_000_000)
    assert (host["CpuShares"], host["PidsLimit"], host["OomScoreAdj"]) == (512, 100, 100)
    assert host["Privileged"] is False and host["PidMode"] == ""

    status = (await sh(rt, docker_id, "cat /proc/self/status"))[1]
    assert "NoNewPrivs:\t1" in status and "Seccomp:\t2" in status
    assert int(status.split("CapEff:\t")[1].split()[0], 16) & (1 << 13) == 0  # CAP_NET_RAW dropped
    code, out = await sh(rt, docker_id, "mkdir /run/x")
    assert code != 0 and "Operation not permitted" in out  # the seccomp profile from the node's file
    code, out = await sh(rt, docker_id, "touch /x")
    assert code != 0 and "Read-only file system" in out
    # Read from PID 1: a process `docker exec` starts sometimes gets its nofile soft limit raised
    # to the hard one (runc's Go runtime raises it for itself at start; seen on this engine).
    limits = (await sh(rt, docker_id, "cat /proc/1/limits"))[1]
    assert "Max open files            1000                 2000" in limits, limits
    assert "Max processes             500                  500" in limits, limits
    assert (await sh(rt, docker_id, "cat /proc/sys/net/core/somaxconn /proc/sys/kernel/shmmni"))[1].split() == [
        "777", "2048"]
    assert "10.0.0.7\tdb.local" in (await sh(rt, docker_id, "cat /etc/hosts"))[1]
    resolv = (await sh(rt, docker_id, "cat /etc/resolv.conf"))[1]
    assert "search example.com" in resolv and "ndots:2" in resolv
    assert "1234" in (await sh(rt, docker_id, "id -G"))[1].split()
    mounts = (await sh(rt, docker_id, "cat /proc/mounts"))[1]
    assert any(line.startswith("tmpfs /run tmpfs") and "size=65536k" in line and "mode=1770" in line
               for line in mounts.splitlines()), mounts
    assert any(" /dev/shm " in line and "size=32768k" in line for line in mounts.splitlines()), mounts
    assert (await sh(rt, docker_id, "cat /proc/self/oom_score_adj"))[1].strip() == "100"
    assert (await sh(rt, docker_id, "cat /proc/1/cmdline"))[1].startswith("/sbin/docker-init")

    await rt.stop(docker_id, grace_seconds=20)  # SIGINT, relayed by the init, ends the loop at once
    logs = clean_engine.api.logs(docker_id).decode()
    assert "got-INT" in logs, logs
    assert clean_engine.api.inspect_container(docker_id)["State"]["ExitCode"] == 0


PRIVILEGED = """
    services:
      root:
        image: {image}
        command: [sleep, "3600"]
        privileged: true
      protected:
        image: {image}
        command: [sleep, "3600"]
        oom_score_adj: -100
      tools:
        image: {image}
        command: [sleep, "3600"]
        cap_add: [SYS_ADMIN]
        devices: ["/dev/loop0:/dev/ccs-loop:r"]
        pid: host
        security_opt: ["seccomp=unconfined", "apparmor=unconfined", "label=disable", "systempaths=unconfined"]
      hostnet:
        image: {image}
        command: [sleep, "3600"]
        network_mode: host
    """


def _read(path: str) -> str:
    return Path(path).read_text().strip()


def _all_capabilities() -> bool:
    """Whether this host's processes (and so its dockerd) hold every capability: a privileged
    container and a negative oom_score_adj need them (CAP_SYS_RESOURCE among them), and some
    sandboxes drop a few from the bounding set of everything they run."""
    last = int(Path("/proc/sys/kernel/cap_last_cap").read_text())
    bounding = int(Path("/proc/self/status").read_text().split("CapBnd:\t")[1].split()[0], 16)
    return bounding == (1 << (last + 1)) - 1


async def test_privileged_keys_have_their_effect(
    rt: DockerRuntime, clean_engine: docker.DockerClient, test_image: TestImages,  # noqa: F811
) -> None:
    parsed = parse(PRIVILEGED.format(image=test_image.busybox))
    assert sorted({u.policy for u in parsed.privileged}) == [
        "cap_add", "devices", "network_mode", "oom_score_adj", "pid", "privileged", "security_opt"]

    for service, field, value in (("root", "Privileged", True), ("protected", "OomScoreAdj", -100)):
        c = assignment(parsed.services[service], service)
        await rt.prepare(c)
        assert clean_engine.api.inspect_container(await rt.create(c))["HostConfig"][field] == value

    tools = await launch(rt, assignment(parsed.services["tools"], "tools"))
    host = clean_engine.api.inspect_container(tools)["HostConfig"]
    assert host["CapAdd"] == ["CAP_SYS_ADMIN"] and host["Privileged"] is False
    assert host["Devices"] == [{"PathOnHost": "/dev/loop0", "PathInContainer": "/dev/ccs-loop",
                                "CgroupPermissions": "r"}]
    assert host["PidMode"] == "host"
    assert host["SecurityOpt"] == ["seccomp=unconfined", "apparmor=unconfined", "label=disable"]
    assert (host["MaskedPaths"], host["ReadonlyPaths"]) == ([], [])
    status = (await sh(rt, tools, "cat /proc/self/status"))[1]
    assert int(status.split("CapEff:\t")[1].split()[0], 16) & (1 << 21)  # CAP_SYS_ADMIN
    assert "Seccomp:\t0" in status
    assert (await sh(rt, tools, "test -b /dev/ccs-loop && cat /dev/ccs-loop >/dev/null && echo read"))[1] == "read\n"
    code, out = await sh(rt, tools, "echo x > /dev/ccs-loop")
    assert code != 0 and "Operation not permitted" in out  # "r" only, by the device cgroup
    host_init = _read("/proc/1/comm")
    assert (await sh(rt, tools, "cat /proc/1/comm"))[1].strip() == host_init  # the node's PID 1
    assert "/proc/kcore" not in (await sh(rt, tools, "cat /proc/mounts"))[1]  # systempaths: nothing masked

    hostnet = await launch(rt, assignment(parsed.services["hostnet"], "hostnet"))
    raw = clean_engine.api.inspect_container(hostnet)
    assert raw["HostConfig"]["NetworkMode"] == "host" and list(raw["NetworkSettings"]["Networks"]) == ["host"]
    engine_pid = int(_read("/var/run/docker.pid"))  # the root dockerd, which made it
    assert (await sh(rt, hostnet, "readlink /proc/self/ns/net"))[1].strip() == os.readlink(f"/proc/{engine_pid}/ns/net")


@pytest.mark.skipif(not _all_capabilities(), reason="this host's bounding set lacks capabilities a privileged "
                    "container needs, so its dockerd cannot start one (runc: unable to apply caps)")
async def test_privileged_and_protected_containers_run_as_asked(
    rt: DockerRuntime, test_image: TestImages,  # noqa: F811
) -> None:
    parsed = parse(PRIVILEGED.format(image=test_image.busybox))
    root = await launch(rt, assignment(parsed.services["root"], "root"))
    status = (await sh(rt, root, "cat /proc/self/status"))[1]
    last = int(_read("/proc/sys/kernel/cap_last_cap"))
    assert int(status.split("CapEff:\t")[1].split()[0], 16) == (1 << (last + 1)) - 1
    protected = await launch(rt, assignment(parsed.services["protected"], "protected"))
    assert (await sh(rt, protected, "cat /proc/self/oom_score_adj"))[1].strip() == "-100"


async def test_what_the_node_cannot_honour_fails_the_container_naming_the_option(
    rt: DockerRuntime, clean_engine: docker.DockerClient, test_image: TestImages, tmp_path: Path,  # noqa: F811
) -> None:
    missing = tmp_path / "nope.json"
    parsed = parse(f"""
        services:
          a: {{image: {test_image.busybox}, command: [sleep, "60"], security_opt: ["seccomp={missing}"]}}
          b: {{image: {test_image.busybox}, command: [sleep, "60"], security_opt: [no-new-privileges, "apparmor=ccs-test"]}}
        """)
    c = assignment(parsed.services["a"], "a")
    await rt.prepare(c)
    with pytest.raises(InvalidSpec) as info:
        await rt.create(c)
    assert info.value.field == "spec.security_opt[0]"
    assert f"cannot read the seccomp profile {missing} on this node" in info.value.why

    options: list[Any] = clean_engine.info().get("SecurityOptions") or []
    if any("name=apparmor" in str(o) for o in options):
        pytest.skip("this engine has AppArmor: the profile would apply (or the engine would refuse it)")
    c = assignment(parsed.services["b"], "b")
    await rt.prepare(c)
    with pytest.raises(InvalidSpec) as info:
        await rt.create(c)
    assert info.value.field == "spec.security_opt[1]"
    assert "AppArmor is not enabled on this node's engine" in info.value.why
