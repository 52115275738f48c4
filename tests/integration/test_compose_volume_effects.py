"""Compose volume and port keys, from template text to the real Docker Engine, checked with
``docker inspect`` / ``docker volume inspect``: the proofs the key-effects table
(tests/unit/test_compose_key_effects.py) names for the volume and port keys.

Each test parses a template with the real parser, turns each service into the container
assignment the control plane would send, and drives the agent's DockerRuntime with it
(prepare, create, start): the same path as a deploy, without a server, so every key's effect is
looked at on the engine object it must change. Everything made here carries a per-session cluster
label (or a per-session name) and is removed at the end.
"""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import docker
import pytest

from ccs.v1 import resources_pb2 as pb
from controlplane.compose import parse_template
from nodeagent.runtime import VolumeFailed, VolumeMissing, naming
from nodeagent.runtime.docker_engine import DockerRuntime

from .docker_fixtures import TestImages, docker_client, test_image  # noqa: F401

pytestmark = [pytest.mark.docker, pytest.mark.timeout(180)]

CLUSTER = f"vol{uuid.uuid4().hex[:8]}"
PREFIX = f"i11{CLUSTER}"  # names of volumes this module makes outside ccs's naming
IDLE = ["sh", "-c", "trap 'exit 0' TERM; while true; do sleep 1; done"]


@pytest.fixture(scope="module")
def engine(docker_client: docker.DockerClient) -> Iterator[docker.DockerClient]:  # noqa: F811
    yield docker_client
    selector = {"label": [f"{naming.CLUSTER}={CLUSTER}"]}
    for c in docker_client.api.containers(all=True, filters=selector):
        with contextlib.suppress(docker.errors.NotFound):
            docker_client.api.remove_container(c["Id"], force=True, v=True)
    for n in docker_client.api.networks(filters=selector):
        with contextlib.suppress(docker.errors.NotFound):
            docker_client.api.remove_network(n["Id"])
    for v in docker_client.api.volumes().get("Volumes") or ():
        if (v.get("Labels") or {}).get(naming.CLUSTER) == CLUSTER or v["Name"].startswith(PREFIX):
            with contextlib.suppress(docker.errors.APIError):
                docker_client.api.remove_volume(v["Name"])


@pytest.fixture
async def rt(engine: docker.DockerClient, test_image: TestImages) -> AsyncIterator[DockerRuntime]:  # noqa: F811
    runtime = DockerRuntime(bind_address="127.0.0.1", cluster=CLUSTER)
    yield runtime
    await runtime.aclose()


def assignments(template: str, app: str) -> dict[str, pb.Container]:
    """The container (slot 1) the control plane would assign for each service of `template`."""
    parsed = parse_template(template, env={}, files={}, app_name=app)
    out = {}
    for service, spec in parsed.services.items():
        c = pb.Container(meta=pb.Meta(id=uuid.uuid4().hex, name=f"{service}-1"), cluster=CLUSTER,
                         application=app, service=service, node="node-7", slot=1, spec_generation=1,
                         app_revision=1, desired_state=pb.DESIRED_STATE_RUNNING)
        c.spec.CopyFrom(spec)
        out[service] = c
    return out


async def launch(rt: DockerRuntime, c: pb.Container) -> str:
    await rt.prepare(c)
    docker_id = await rt.create(c)
    await rt.start(docker_id)
    return docker_id


async def shell(rt: DockerRuntime, docker_id: str, script: str) -> str:
    result = await rt.exec(docker_id, ["sh", "-c", script], timeout_seconds=20)
    assert result.exit_code == 0, result.output
    return result.output.decode().strip()


def mounts_by_target(engine: docker.DockerClient, docker_id: str) -> dict[str, dict[str, Any]]:
    return {m["Destination"]: m for m in engine.api.inspect_container(docker_id)["Mounts"]}


# ------------------------------------------------------------------ top-level volumes


async def test_driver_driver_opts_labels_and_name_reach_the_volume_create(
    rt: DockerRuntime, engine: docker.DockerClient, test_image: TestImages,  # noqa: F811
) -> None:
    """An NFS-style local volume is created as asked (the local driver mounts only when a
    container starts, so creating the container proves the definition without an NFS server);
    a tmpfs one, started, shows the mount the options ask for."""
    app = f"defs{uuid.uuid4().hex[:6]}"
    shared = f"{PREFIX}-shared"
    template = f"""
services:
  nfs:
    image: {test_image.busybox}
    command: {IDLE}
    volumes: [export:/export]
  scratch:
    image: {test_image.busybox}
    command: {IDLE}
    volumes: [ram:/ram, named:/named]
volumes:
  export:
    driver: local
    driver_opts: {{type: nfs, o: "addr=192.0.2.10,rw,nfsvers=4", device: ":/export"}}
    labels: {{team: storage, ccs.app: spoofed}}
  ram:
    driver_opts: {{type: tmpfs, device: tmpfs, o: "size=2m,mode=1770"}}
  named:
    name: {shared}
"""
    cs = assignments(template, app)
    await rt.prepare(cs["nfs"])
    nfs_id = await rt.create(cs["nfs"])  # created, never started: nothing mounts the export
    volume = engine.api.inspect_volume(naming.volume_name(CLUSTER, app, "export"))
    assert volume["Driver"] == "local"
    assert volume["Options"] == {"type": "nfs", "o": "addr=192.0.2.10,rw,nfsvers=4", "device": ":/export"}
    assert volume["Labels"]["team"] == "storage"
    assert volume["Labels"][naming.APP] == app  # ccs's own label wins over the template's
    assert mounts_by_target(engine, nfs_id)["/export"]["Name"] == naming.volume_name(CLUSTER, app, "export")

    scratch_id = await launch(rt, cs["scratch"])
    ram = engine.api.inspect_volume(naming.volume_name(CLUSTER, app, "ram"))
    assert ram["Options"] == {"type": "tmpfs", "device": "tmpfs", "o": "size=2m,mode=1770"}
    mounted = await shell(rt, scratch_id, "grep ' /ram ' /proc/mounts")
    assert mounted.split()[2] == "tmpfs" and "size=2048k" in mounted and "mode=1770" in mounted, mounted
    assert mounts_by_target(engine, scratch_id)["/named"]["Name"] == shared
    assert engine.api.inspect_volume(shared)["Labels"][naming.VOLUME] == "named"


async def test_a_missing_external_volume_is_never_created_and_is_used_once_it_exists(
    rt: DockerRuntime, engine: docker.DockerClient, test_image: TestImages,  # noqa: F811
) -> None:
    name = f"{PREFIX}-handmade"
    template = f"""
services:
  db:
    image: {test_image.busybox}
    command: {IDLE}
    volumes: [data:/data]
volumes:
  data: {{external: true, name: {name}}}
"""
    c = assignments(template, "ext")["db"]
    with pytest.raises(VolumeMissing) as info:
        await rt.prepare(c)
    assert not info.value.permanent
    assert f"external volume {name!r} (volumes.data) does not exist on node node-7" in info.value.reason
    with pytest.raises(docker.errors.NotFound):
        engine.api.inspect_volume(name)  # the agent did not create it

    engine.api.create_volume(name, labels={"made": "by-hand"})
    docker_id = await launch(rt, c)
    assert mounts_by_target(engine, docker_id)["/data"]["Name"] == name
    assert engine.api.inspect_volume(name)["Labels"] == {"made": "by-hand"}  # untouched by ccs


async def test_a_driver_the_node_lacks_fails_naming_the_driver_the_volume_and_the_node(
    rt: DockerRuntime, engine: docker.DockerClient, test_image: TestImages,  # noqa: F811
) -> None:
    app = f"drv{uuid.uuid4().hex[:6]}"
    template = f"""
services:
  db: {{image: {test_image.busybox}, volumes: [data:/data]}}
volumes:
  data: {{driver: no-such-plugin}}
"""
    with pytest.raises(VolumeFailed) as info:
        await rt.prepare(assignments(template, app)["db"])
    assert info.value.permanent
    reason = info.value.reason
    assert f"volume '{naming.volume_name(CLUSTER, app, 'data')}' (volumes.data): volume driver 'no-such-plugin' is not installed on node node-7" \
        in reason, reason


async def test_options_the_driver_refuses_fail_with_the_drivers_reason(
    rt: DockerRuntime, test_image: TestImages,  # noqa: F811
) -> None:
    template = f"""
services:
  db: {{image: {test_image.busybox}, volumes: [data:/data]}}
volumes:
  data: {{driver_opts: {{type: nfs}}}}
"""
    with pytest.raises(VolumeFailed) as info:
        await rt.prepare(assignments(template, f"opt{uuid.uuid4().hex[:6]}")["db"])
    assert "driver 'local' refused it on node node-7" in info.value.reason
    assert "device" in info.value.reason, info.value.reason  # the local driver wants a device


async def test_an_existing_volume_with_other_options_is_refused_not_silently_used(
    rt: DockerRuntime, engine: docker.DockerClient, test_image: TestImages,  # noqa: F811
) -> None:
    app = f"old{uuid.uuid4().hex[:6]}"
    name = naming.volume_name(CLUSTER, app, "data")
    engine.api.create_volume(name, driver="local",
                             driver_opts={"type": "tmpfs", "device": "tmpfs", "o": "size=1m"},
                             labels={**naming.app_labels(CLUSTER, app), naming.VOLUME: "data"})
    template = f"""
services:
  db: {{image: {test_image.busybox}, volumes: [data:/data]}}
volumes:
  data: {{driver_opts: {{type: tmpfs, device: tmpfs, o: "size=64m"}}, labels: {{team: db}}}}
"""
    with pytest.raises(VolumeFailed) as info:
        await rt.prepare(assignments(template, app)["db"])
    reason = info.value.reason
    assert f"volume '{name}' (volumes.data) exists on node node-7 but not as the template describes" \
        in reason, reason
    assert "its driver_opts differ (o)" in reason and "it lacks labels (team)" in reason, reason
    assert "64m" not in reason and "1m" not in reason  # option values may be credentials: never shown


async def test_applications_whose_names_joined_with_dashes_collide_get_volumes_of_their_own(
    rt: DockerRuntime, engine: docker.DockerClient, test_image: TestImages,  # noqa: F811
) -> None:
    """`ccs-<app>-<volume>` gave app `X-b` with volume `c` and app `X` with volume `b-c` one
    volume: the second mounted the first's data. Each now has its own, and the data stays apart."""
    base = f"co{uuid.uuid4().hex[:6]}"
    first = assignments(f"services: {{db: {{image: {test_image.busybox}, command: {IDLE}, volumes: [c:/data]}}}}\n"
                        "volumes: {c: {}}\n", f"{base}-b")["db"]
    second = assignments(f"services: {{db: {{image: {test_image.busybox}, command: {IDLE}, volumes: [b-c:/data]}}}}\n"
                         "volumes: {b-c: {}}\n", base)["db"]
    one = await launch(rt, first)
    await shell(rt, one, "echo first > /data/owner")
    two = await launch(rt, second)
    assert mounts_by_target(engine, one)["/data"]["Name"] != mounts_by_target(engine, two)["/data"]["Name"]
    assert await shell(rt, two, "cat /data/owner 2>/dev/null || echo empty") == "empty"


async def test_a_volume_an_older_agent_named_is_adopted_with_its_data(
    rt: DockerRuntime, engine: docker.DockerClient, test_image: TestImages,  # noqa: F811
) -> None:
    """A volume made under the older name `ccs-<app>-<volume>` and labelled as this application's
    is mounted as it is (renaming would move the data); one of that name labelled for another
    application is not: the container gets the new name."""
    app = f"ad{uuid.uuid4().hex[:6]}"
    template = f"services: {{db: {{image: {test_image.busybox}, command: {IDLE}, volumes: [data:/data]}}}}\n" \
               "volumes: {data: {}}\n"
    legacy = naming.legacy_volume_name(app, "data")
    engine.api.create_volume(legacy, labels={**naming.app_labels(CLUSTER, app), naming.VOLUME: "data"})
    seeded = engine.containers.run(test_image.busybox, ["sh", "-c", "echo kept > /data/was-here"],
                                   volumes={legacy: {"bind": "/data", "mode": "rw"}}, remove=True)
    assert seeded == b""
    adopted = await launch(rt, assignments(template, app)["db"])
    assert mounts_by_target(engine, adopted)["/data"]["Name"] == legacy
    assert await shell(rt, adopted, "cat /data/was-here") == "kept"

    other = f"ad{uuid.uuid4().hex[:6]}"
    engine.api.create_volume(naming.legacy_volume_name(other, "data"),
                             labels={**naming.app_labels(CLUSTER, "someone-else"), naming.VOLUME: "data"})
    fresh = await launch(rt, assignments(template, other)["db"])
    assert mounts_by_target(engine, fresh)["/data"]["Name"] == naming.volume_name(CLUSTER, other, "data")


# ------------------------------------------------------------------ per-mount options


async def test_mount_options_reach_the_container(
    rt: DockerRuntime, engine: docker.DockerClient, test_image: TestImages, tmp_path: Path,  # noqa: F811
) -> None:
    (tmp_path / "conf").mkdir()
    (tmp_path / "conf" / "app.txt").write_text("from the host\n")
    created = tmp_path / "made" / "by-the-engine"
    template = f"""
services:
  web:
    image: {test_image.busybox}
    command: {IDLE}
    volumes:
      - {tmp_path}/conf:/conf:ro,z,rprivate
      - {created}:/created
      - type: bind
        source: {tmp_path}/conf
        target: /plain
        read_only: true
        bind: {{propagation: private, recursive: disabled}}
      - type: volume
        target: /anon
        volume: {{labels: {{team: web}}}}
      - type: tmpfs
        target: /scratch
        tmpfs: {{size: 1m, mode: "1777"}}
  nocopy:
    image: {test_image.webapp_v1}
    volumes: [{{type: volume, source: empty, target: /www, volume: {{nocopy: true}}}}]
  copy:
    image: {test_image.webapp_v1}
    volumes: [copied:/www]
volumes:
  empty:
  copied:
"""
    cs = assignments(template, f"mnt{uuid.uuid4().hex[:6]}")
    assert not created.exists()
    docker_id = await launch(rt, cs["web"])
    raw = engine.api.inspect_container(docker_id)
    host, mounts = raw["HostConfig"], {m["Destination"]: m for m in raw["Mounts"]}

    # Short-syntax bind: create_host_path (the engine's bind syntax), ro, SELinux z, propagation.
    assert host["Binds"] == [f"{tmp_path}/conf:/conf:ro,z,rprivate", f"{created}:/created:rw"]
    assert (mounts["/conf"]["RW"], mounts["/conf"]["Mode"], mounts["/conf"]["Propagation"]) == (
        False, "ro,z,rprivate", "rprivate")
    assert await shell(rt, docker_id, "cat /conf/app.txt") == "from the host"
    assert created.is_dir()  # create_host_path: the engine made the missing host path
    # Long-syntax bind without create_host_path: Mounts with its options.
    (plain,) = [m for m in host["Mounts"] if m["Target"] == "/plain"]
    assert plain["BindOptions"] == {"Propagation": "private", "NonRecursive": True}
    assert mounts["/plain"]["Propagation"] == "private" and mounts["/plain"]["RW"] is False
    # Labels of an anonymous volume.
    anon = engine.api.inspect_volume(mounts["/anon"]["Name"])
    assert anon["Labels"]["team"] == "web" and anon["Labels"][naming.ANONYMOUS] == "true"
    # tmpfs size and mode.
    (scratch,) = [m for m in host["Mounts"] if m["Target"] == "/scratch"]
    assert scratch["TmpfsOptions"] == {"SizeBytes": 1 << 20, "Mode": 0o1777}
    assert await shell(rt, docker_id, "stat -c %a /scratch") == "1777"
    assert "size=1024k" in await shell(rt, docker_id, "grep ' /scratch ' /proc/mounts")

    # nocopy: the image's /www files are not copied into the new volume; without it they are.
    nocopy_id, copy_id = await launch(rt, cs["nocopy"]), await launch(rt, cs["copy"])
    (www,) = [m for m in engine.api.inspect_container(nocopy_id)["HostConfig"]["Mounts"]]
    assert www["VolumeOptions"] == {"NoCopy": True}
    assert await shell(rt, nocopy_id, "ls -A /www") == ""
    assert await shell(rt, copy_id, "cat /www/index.html") == "v1"


# ------------------------------------------------------------------ ports


async def test_ports_target_published_protocol_host_ip_and_mode_host(
    rt: DockerRuntime, engine: docker.DockerClient, test_image: TestImages,  # noqa: F811
) -> None:
    template = f"""
services:
  web:
    image: {test_image.busybox}
    command: {IDLE}
    ports:
      - {{target: 8080, published: "18080", protocol: tcp, host_ip: 127.0.0.2, mode: host}}
      - {{target: 5353, published: 15353, protocol: udp}}
      - "127.0.0.1:18081:81"
"""
    docker_id = await launch(rt, assignments(template, f"ports{uuid.uuid4().hex[:6]}")["web"])
    raw = engine.api.inspect_container(docker_id)
    assert raw["HostConfig"]["PortBindings"] == {
        "8080/tcp": [{"HostIp": "127.0.0.2", "HostPort": "18080"}],
        "5353/udp": [{"HostIp": "127.0.0.1", "HostPort": "15353"}],
        "81/tcp": [{"HostIp": "127.0.0.1", "HostPort": "18081"}],
    }
    assert set(raw["Config"]["ExposedPorts"]) == {"8080/tcp", "5353/udp", "81/tcp"}
