"""Mounts -> Engine API: volume definitions, bind and tmpfs options, and the existing-volume check."""

from __future__ import annotations

from typing import Any

import pytest

from ccs.v1 import resources_pb2 as pb
from nodeagent.runtime import InvalidSpec
from nodeagent.runtime.mounts import NamedVolume, volume_differences
from nodeagent.runtime.translate import CreateRequest, create_request

APP = {"ccs.managed": "true", "ccs.cluster": "prod", "ccs.app": "shop"}


def request(*mounts: pb.VolumeMount) -> CreateRequest:
    c = pb.Container(meta=pb.Meta(id="0123456789abcdef", name="web-1"), cluster="prod", application="shop",
                     service="web", node="n1", slot=1)
    c.spec.CopyFrom(pb.ServiceSpec(image="local/webapp:v1", volumes=list(mounts)))
    return create_request(c, bind_address="10.0.0.5")


def host(*mounts: pb.VolumeMount) -> dict[str, Any]:
    return dict(request(*mounts).body["HostConfig"])


def test_a_definition_gives_the_volume_its_driver_options_labels_and_name() -> None:
    nfs = {"type": "nfs", "o": "addr=10.0.0.1,rw", "device": ":/export"}
    r = request(
        pb.VolumeMount(type="volume", source="data", target="/data", volume=pb.NamedVolume(
            name="data", driver="local", driver_opts=nfs, labels={"team": "db", "ccs.app": "spoofed"})),
        pb.VolumeMount(type="volume", source="shared", target="/shared", volume=pb.NamedVolume(
            name="shared", volume_name="team-shared")),
        pb.VolumeMount(type="volume", source="ext", target="/ext", nocopy=True, volume=pb.NamedVolume(
            name="ext", external=True, volume_name="made-by-hand")),
    )
    assert [(v.name, v.key, v.driver, v.driver_opts, v.labels, v.external, v.legacy) for v in r.volumes] == [
        ("ccs-prod_shop_data", "data", "local", nfs, {"team": "db", **APP, "ccs.volume": "data"}, False,
         "ccs-shop-data"),  # ccs wins; the name an older agent gave it may be adopted
        ("team-shared", "shared", "", {}, {**APP, "ccs.volume": "shared"}, False, ""),  # the user's name: no older one
        ("made-by-hand", "ext", "", {}, {}, True, ""),  # never created, so no labels
    ]
    assert r.volumes[0].user_labels == {"team": "db"}  # what an existing volume must carry
    assert r.body["HostConfig"]["Mounts"] == [
        {"Type": "volume", "Target": "/data", "Source": "ccs-prod_shop_data"},
        {"Type": "volume", "Target": "/shared", "Source": "team-shared"},
        {"Type": "volume", "Target": "/ext", "Source": "made-by-hand", "VolumeOptions": {"NoCopy": True}},
    ]


def test_anonymous_volume_labels_and_nocopy() -> None:
    (mount,) = host(pb.VolumeMount(type="volume", target="/cache", nocopy=True,
                                   volume_labels={"team": "db", "ccs.anonymous": "no"}))["Mounts"]
    assert mount["VolumeOptions"] == {"Labels": {"team": "db", **APP, "ccs.anonymous": "true"}, "NoCopy": True}


def test_binds_that_create_their_host_path_use_the_bind_syntax_with_their_modes() -> None:
    h = host(
        pb.VolumeMount(type="bind", source="/srv/a", target="/a", bind=pb.BindMountOptions(create_host_path=True)),
        pb.VolumeMount(type="bind", source="/srv/b", target="/b", read_only=True, bind=pb.BindMountOptions(
            create_host_path=True, selinux="Z", propagation="rshared")),
        pb.VolumeMount(type="bind", source="/srv/c", target="/c", read_only=True, bind=pb.BindMountOptions(
            propagation="rslave", non_recursive=True)),
        pb.VolumeMount(type="bind", source="/srv/d", target="/d"),
    )
    assert h["Binds"] == ["/srv/a:/a:rw", "/srv/b:/b:ro,Z,rshared"]
    assert h["Mounts"] == [
        {"Type": "bind", "Target": "/c", "Source": "/srv/c", "ReadOnly": True,
         "BindOptions": {"Propagation": "rslave", "NonRecursive": True}},
        {"Type": "bind", "Target": "/d", "Source": "/srv/d"},
    ]


def test_no_binds_key_without_such_binds() -> None:
    assert "Binds" not in host(pb.VolumeMount(type="tmpfs", target="/t"))


def test_tmpfs_size_and_mode() -> None:
    (mount,) = host(pb.VolumeMount(type="tmpfs", target="/t", tmpfs=pb.TmpfsMountOptions(
        size_bytes=1 << 20, mode=0o1777)))["Mounts"]
    assert mount == {"Type": "tmpfs", "Target": "/t", "TmpfsOptions": {"SizeBytes": 1 << 20, "Mode": 0o1777}}


@pytest.mark.parametrize(
    ("mount", "field", "why"),
    [
        (pb.VolumeMount(type="bind", source="/a", target="/a", bind=pb.BindMountOptions(propagation="up")),
         "spec.volumes[0].bind.propagation", "'up'"),
        (pb.VolumeMount(type="bind", source="/a", target="/a", bind=pb.BindMountOptions(selinux="x")),
         "spec.volumes[0].bind.selinux", "z or Z"),
        (pb.VolumeMount(type="bind", source="/a", target="/a", bind=pb.BindMountOptions(
            create_host_path=True, non_recursive=True)), "spec.volumes[0].bind.non_recursive", "cannot be combined"),
        (pb.VolumeMount(type="bind", source="/a:b", target="/a", bind=pb.BindMountOptions(create_host_path=True)),
         "spec.volumes[0].source", "':'"),
        (pb.VolumeMount(type="tmpfs", target="/t", tmpfs=pb.TmpfsMountOptions(mode=0o10000)),
         "spec.volumes[0].tmpfs.mode", "0o7777"),
        (pb.VolumeMount(type="tmpfs", target="/t", tmpfs=pb.TmpfsMountOptions(size_bytes=-1)),
         "spec.volumes[0].tmpfs.size_bytes", "negative"),
        (pb.VolumeMount(type="volume", source="d", target="/d", volume=pb.NamedVolume(name="other")),
         "spec.volumes[0].volume.name", "'d'"),
        (pb.VolumeMount(type="volume", source="d", target="/d", volume=pb.NamedVolume(name="d", volume_name="a b")),
         "spec.volumes[0].volume.volume_name", "'a b'"),
    ],
)
def test_bad_mounts_name_the_field(mount: pb.VolumeMount, field: str, why: str) -> None:
    with pytest.raises(InvalidSpec) as info:
        request(mount)
    assert info.value.field == field and why in info.value.why


OWNER = {"ccs.cluster": "prod", "ccs.app": "shop", "ccs.volume": "v"}


def _volume(**kw: Any) -> NamedVolume:
    return NamedVolume("v", {**kw.get("user_labels", {}), "ccs.managed": "true", **OWNER}, **kw)


@pytest.mark.parametrize(
    ("volume", "found", "differences"),
    [
        (_volume(), {"Driver": "local", "Options": None, "Labels": OWNER}, []),
        (_volume(driver="local", driver_opts={"type": "tmpfs", "device": "tmpfs"}),
         {"Driver": "local", "Options": {"device": "tmpfs", "type": "tmpfs"}, "Labels": OWNER}, []),
        (_volume(user_labels={"team": "db"}),  # extra labels on the volume do not matter
         {"Driver": "local", "Labels": {"team": "db", **OWNER, "x": "y"}}, []),
        (_volume(driver="nfs-plugin"), {"Driver": "local", "Labels": OWNER}, ["its driver is 'local', not 'nfs-plugin'"]),
        (_volume(driver_opts={"type": "nfs", "o": "addr=10.0.0.1,password=secret"}),
         {"Driver": "local", "Options": {"type": "nfs", "o": "addr=10.0.0.2,password=other"}, "Labels": OWNER},
         ["its driver_opts differ (o)"]),  # names the key, never the values
        (_volume(), {"Driver": "local", "Options": {"type": "tmpfs"}, "Labels": OWNER},
         ["its driver_opts differ (type)"]),
        (_volume(user_labels={"team": "db"}), {"Driver": "local", "Labels": {**OWNER, "team": "web"}},
         ["it lacks labels (team)"]),
        # Another application's volume of that name (or one made outside ccs) is not mounted.
        (_volume(), {"Driver": "local", "Labels": {**OWNER, "ccs.app": "other-app"}},
         ["it belongs to cluster 'prod', application 'other-app', volume 'v' (a volume two applications "
          "share must be external in one of them)"]),
        (_volume(), {"Driver": "local", "Labels": None},
         ["it belongs to cluster '-', application '-', volume '-' (a volume two applications "
          "share must be external in one of them)"]),
    ],
)
def test_an_existing_volume_must_be_the_one_the_template_describes(
    volume: NamedVolume, found: dict[str, Any], differences: list[str]
) -> None:
    assert volume_differences(volume, found) == differences
