"""Container options -> the engine's HostConfig; host networking; what the agent finishes on
the node (seccomp profile files, AppArmor)."""

from __future__ import annotations

import json
from typing import Any

import pytest

from ccs.v1 import resources_pb2 as pb
from nodeagent.runtime import InvalidSpec
from nodeagent.runtime.node_security import needs_node, resolve
from nodeagent.runtime.translate import create_request


def make(**spec: Any) -> pb.Container:
    c = pb.Container(meta=pb.Meta(id="0123456789abcdef", name="web-1"), cluster="prod", application="shop",
                     service="web", slot=1)
    c.spec.CopyFrom(pb.ServiceSpec(**{"image": "local/webapp:v1", **spec}))
    return c


def host(**spec: Any) -> dict[str, Any]:
    host_config: dict[str, Any] = create_request(make(**spec), bind_address="10.0.0.5").body["HostConfig"]
    return host_config


def test_nothing_set_adds_nothing() -> None:
    assert set(host()) == {"RestartPolicy", "NetworkMode", "PortBindings", "Mounts"}


def test_every_option_becomes_its_engine_field() -> None:
    h = host(
        cap_add=["CAP_SYS_ADMIN"], cap_drop=["ALL"], security_opt=["no-new-privileges", "apparmor=x"],
        privileged=True, devices=[pb.DeviceMapping(path_on_host="/dev/fuse", path_in_container="/dev/f",
                                                   permissions="rw")],
        pid="host", read_only=True, ulimits=[pb.Ulimit(name="nofile", soft=10, hard=20)],
        shm_size_bytes=1 << 26, sysctls={"net.core.somaxconn": "1024", "kernel.sem": "1 2 3 4"},
        extra_hosts=["db:10.0.0.7"], dns=["9.9.9.9"], dns_search=["example.com"], dns_opt=["ndots:2"],
        group_add=["audio"], tmpfs={"/run": "size=64m", "/tmp": ""}, init=True, cpu_shares=512,
        oom_score_adj=-10,
    )
    assert h["CapAdd"] == ["CAP_SYS_ADMIN"] and h["CapDrop"] == ["ALL"]
    assert h["SecurityOpt"] == ["no-new-privileges", "apparmor=x"]
    assert h["Privileged"] is True
    assert h["Devices"] == [{"PathOnHost": "/dev/fuse", "PathInContainer": "/dev/f", "CgroupPermissions": "rw"}]
    assert (h["PidMode"], h["ReadonlyRootfs"], h["ShmSize"]) == ("host", True, 1 << 26)
    assert h["Ulimits"] == [{"Name": "nofile", "Soft": 10, "Hard": 20}]
    assert h["Sysctls"] == {"kernel.sem": "1 2 3 4", "net.core.somaxconn": "1024"}
    assert (h["ExtraHosts"], h["Dns"], h["DnsSearch"], h["DnsOptions"], h["GroupAdd"]) == (
        ["db:10.0.0.7"], ["9.9.9.9"], ["example.com"], ["ndots:2"], ["audio"])
    assert h["Tmpfs"] == {"/run": "size=64m", "/tmp": ""}
    assert (h["Init"], h["CpuShares"], h["OomScoreAdj"]) == (True, 512, -10)
    assert "MaskedPaths" not in h


def test_init_false_is_sent_because_it_overrides_an_engine_default() -> None:
    assert host(init=False)["Init"] is False
    assert "Init" not in host()


def test_systempaths_unconfined_unmasks_the_system_paths_as_the_docker_cli_does() -> None:
    h = host(security_opt=["systempaths=unconfined", "label=disable"])
    assert (h["MaskedPaths"], h["ReadonlyPaths"], h["SecurityOpt"]) == ([], [], ["label=disable"])


def test_host_network_joins_no_application_network() -> None:
    request = create_request(make(network_mode="host", expose=["80"]), bind_address="10.0.0.5")
    assert request.network == ""
    assert request.body["HostConfig"]["NetworkMode"] == "host"
    assert request.body["HostConfig"]["PortBindings"] == {}
    assert "NetworkingConfig" not in request.body


@pytest.mark.parametrize(
    ("spec", "field"),
    [
        ({"network_mode": "bridge"}, "spec.network_mode"),
        ({"pid": "container:x"}, "spec.pid"),
        ({"security_opt": ["whatever"]}, "spec.security_opt[0]"),
        ({"devices": [pb.DeviceMapping(path_on_host="fuse")]}, "spec.devices[0].path_on_host"),
        ({"ulimits": [pb.Ulimit(name="nofile", soft=30, hard=20)]}, "spec.ulimits[0].soft"),
        ({"ulimits": [pb.Ulimit(soft=1, hard=2)]}, "spec.ulimits[0].name"),
        ({"tmpfs": {"run": ""}}, "spec.tmpfs['run']"),
        ({"shm_size_bytes": -1}, "spec.shm_size_bytes"),
        ({"cpu_shares": -2}, "spec.cpu_shares"),
        ({"oom_score_adj": 1001}, "spec.oom_score_adj"),
    ],
)
def test_bad_values_name_the_spec_field(spec: dict[str, Any], field: str) -> None:
    with pytest.raises(InvalidSpec) as info:
        create_request(make(**spec), bind_address="10.0.0.5")
    assert info.value.field == field


# ---------------------------------------------------------------- finished on the node

def body(*options: str) -> dict[str, Any]:
    return {"Image": "x", "HostConfig": {"SecurityOpt": list(options), "Privileged": False}}


PROFILE = json.dumps({"defaultAction": "SCMP_ACT_ALLOW"})


def test_a_seccomp_profile_path_is_sent_as_its_content() -> None:
    read: list[str] = []

    def read_text(path: str) -> str:
        read.append(path)
        return PROFILE

    b = body("no-new-privileges", "seccomp=/etc/ccs/web.json")
    assert needs_node(b)
    out = resolve(b, apparmor=False, read_text=read_text)
    assert out["HostConfig"]["SecurityOpt"] == ["no-new-privileges", f"seccomp={PROFILE}"]
    assert out["HostConfig"]["Privileged"] is False and read == ["/etc/ccs/web.json"]
    assert b["HostConfig"]["SecurityOpt"][1] == "seccomp=/etc/ccs/web.json"  # the input is left alone


def test_nothing_to_finish_without_profile_paths_or_apparmor() -> None:
    assert not needs_node(body("no-new-privileges", "seccomp=unconfined", "label=disable"))
    assert not needs_node({"HostConfig": {}})


def missing(path: str) -> str:
    raise FileNotFoundError(2, "No such file or directory", path)


@pytest.mark.parametrize(
    ("options", "apparmor", "reader", "why"),
    [
        (("seccomp=/nope.json",), True, missing, "cannot read the seccomp profile /nope.json on this node"),
        (("seccomp=/bad.json",), True, lambda _: "{not json", "the seccomp profile /bad.json on this node is not JSON"),
        (("no-new-privileges", "apparmor=web"), False, missing, "AppArmor is not enabled on this node's engine"),
    ],
)
def test_what_the_node_cannot_honour_fails_the_container_naming_the_option(
    options: tuple[str, ...], apparmor: bool, reader: Any, why: str,
) -> None:
    with pytest.raises(InvalidSpec) as info:
        resolve(body(*options), apparmor=apparmor, read_text=reader)
    assert info.value.field == f"spec.security_opt[{len(options) - 1}]"
    assert info.value.why.startswith(why)


def test_apparmor_passes_where_the_engine_has_it_and_unconfined_passes_anywhere() -> None:
    assert resolve(body("apparmor=web"), apparmor=True, read_text=missing)["HostConfig"]["SecurityOpt"] == [
        "apparmor=web"]
    assert resolve(body("apparmor=unconfined"), apparmor=False, read_text=missing)["HostConfig"][
        "SecurityOpt"] == ["apparmor=unconfined"]
