"""Compose volumes and ports.mode in the parser: what reaches the ServiceSpec, and every refusal names its field."""

from __future__ import annotations

import textwrap

import pytest
from google.protobuf import json_format

from controlplane.compose import TemplateError, parse_template
from controlplane.compose.template import ParsedTemplate


def parse(text: str) -> ParsedTemplate:
    return parse_template(textwrap.dedent(text), env={}, files={}, app_name="app")


def errors(text: str) -> list[str]:
    with pytest.raises(TemplateError) as info:
        parse(text)
    return [str(e) for e in info.value.errors]


def test_each_named_mount_carries_its_definition_unless_it_is_only_a_name() -> None:
    parsed = parse("""
        services:
          db:
            image: pg
            volumes: [data:/data, plain:/plain, ext:/ext, /anon]
        volumes:
          data:
            driver: local
            driver_opts: {type: nfs, o: "addr=10.0.0.1,rw", device: ":/export", port: 2049}
            labels: [team=db]
            name: db-data
          plain: {}
          ext: {external: true}
        """)
    mounts = [json_format.MessageToDict(m, preserving_proto_field_name=True) for m in parsed.services["db"].volumes]
    assert mounts == [
        {"type": "volume", "source": "data", "target": "/data", "volume": {
            "name": "data", "driver": "local", "labels": {"team": "db"}, "volume_name": "db-data",
            "driver_opts": {"type": "nfs", "o": "addr=10.0.0.1,rw", "device": ":/export", "port": "2049"}}},
        {"type": "volume", "source": "plain", "target": "/plain"},  # as before: the spec does not change
        {"type": "volume", "source": "ext", "target": "/ext",
         "volume": {"name": "ext", "external": True, "volume_name": "ext"}},
        {"type": "volume", "target": "/anon"},
    ]
    assert parsed.warnings == []


def test_the_legacy_external_name_is_honoured_with_a_warning() -> None:
    parsed = parse("""
        services: {web: {image: a, volumes: ['old:/o']}}
        volumes: {old: {external: {name: made-by-hand}}}
        """)
    assert parsed.services["web"].volumes[0].volume.volume_name == "made-by-hand"
    assert parsed.warnings == [
        "volumes.old.external.name: external.name is deprecated in Compose: use name: beside external: true (line 3)"
    ]


def test_labels_ccs_sets_itself_are_warned_about() -> None:
    parsed = parse("""
        services: {web: {image: a, volumes: ['d:/d']}}
        volumes: {d: {labels: {ccs.app: mine, team: db}}}
        """)
    assert parsed.warnings == [
        "volumes.d.labels.ccs.app: labels starting with 'ccs.' are ccs's own: where ccs sets one, its value wins "
        "(line 3)"
    ]


def test_ports_mode_host_is_kept_and_ingress_is_refused_at_its_key() -> None:
    parsed = parse("services:\n  web: {image: a, ports: [{target: 80, published: 8080, mode: host}]}\n")
    assert parsed.services["web"].ports[0].mode == "host"
    (error,) = errors("services:\n  web: {image: a, ports: [{target: 80, published: 8080, mode: ingress}]}\n")
    assert error.startswith("services.web.ports[0].mode: ingress (Swarm's routing mesh")
    assert "x-ccs.routes or aliyun.routing.port_N" in error
    (error,) = errors("services:\n  web: {image: a, ports: [{target: 80, mode: vip}]}\n")
    assert error.startswith("services.web.ports[0]: mode must be host, got 'vip'")


@pytest.mark.parametrize(
    ("case", "text", "expected"),
    [
        ("external with driver", "volumes: {v: {external: true, driver: local}}",
         "volumes.v.driver: cannot be set on an external volume"),
        ("external with driver_opts", "volumes: {v: {external: true, driver_opts: {type: tmpfs}}}",
         "volumes.v.driver_opts: cannot be set on an external volume"),
        ("external with labels", "volumes: {v: {external: true, labels: {a: b}}}",
         "volumes.v.labels: cannot be set on an external volume"),
        ("bad name", "volumes: {v: {name: 'a b'}}", "volumes.v.name: 'a b' is not a valid volume name"),
        ("one-letter name", "volumes: {v: {name: a}}", "volumes.v.name: 'a' is not a valid volume name"),
        ("ccs- name", "volumes: {v: {name: ccs-shop-data}}",
         "volumes.v.name: names starting with 'ccs-' are the ones ccs gives volumes"),
        ("empty driver", "volumes: {v: {driver: ''}}", "volumes.v.driver: must not be empty"),
        ("two names disagree", "volumes: {v: {external: {name: a1}, name: b1}}",
         "volumes.v.external.name: differs from name: 'b1'"),
        ("one engine volume, two definitions", "volumes: {v: {name: same}, w: {name: same, driver: x}}",
         "volumes.w: names the same engine volume 'same' as volumes.v with other settings"),
    ],
)
def test_top_level_volume_refusals_name_the_field(case: str, text: str, expected: str) -> None:
    found = errors(f"services:\n  web: {{image: a}}\n{text}\n")
    assert any(e.startswith(expected) for e in found), found


def test_an_external_volume_may_use_a_ccs_name_to_share_another_applications_volume() -> None:
    parsed = parse("""
        services: {web: {image: a, volumes: ['shop:/s']}}
        volumes: {shop: {external: true, name: ccs-shop-data}}
        """)
    assert parsed.services["web"].volumes[0].volume.volume_name == "ccs-shop-data"


@pytest.mark.parametrize(
    ("mount", "expected"),
    [
        ("{type: bind, source: /a, target: /a, bind: {recursive: readonly}}",
         "bind.recursive: readonly needs Docker Engine 25"),
        ("{type: bind, source: /a, target: /a, bind: {recursive: disabled, create_host_path: true}}",
         "bind.recursive: disabled cannot be combined with create_host_path: true"),
        ("{type: bind, source: /a, target: /a, bind: {selinux: z}}", "bind.selinux needs create_host_path: true"),
        ("{type: bind, source: /a, target: /a, bind: {propagation: up}}", "bind.propagation must be one of"),
        ("{type: volume, source: d, target: /d, bind: {propagation: shared}}",
         "bind: options apply to type bind mounts, and this mount is type volume"),
        ("{type: volume, source: d, target: /d, volume: {labels: {a: b}}}",
         "volume.labels: label the named volume where it is defined (volumes.d.labels)"),
        ("{type: tmpfs, target: /t, tmpfs: {mode: '9'}}", "tmpfs.mode must be octal permission bits"),
        ("{type: tmpfs, target: /t, tmpfs: {mode: 70000}}", "tmpfs.mode must be between 0 and 0o7777"),
        ("{type: tmpfs, target: /t, tmpfs: {size: lots}}", "must be a size like '512M'"),
        ("'/a:/a:nocopy'", "nocopy applies to volumes, not to bind mounts"),
        ("'d:/d:rshared'", "'rshared' applies to bind mounts (host paths), not to volumes"),
    ],
)
def test_mount_option_refusals_name_the_mount(mount: str, expected: str) -> None:
    found = errors(f"services:\n  web: {{image: a, volumes: [{mount}]}}\nvolumes: {{d: {{}}}}\n")
    assert any(e.startswith("services.web.volumes[0]: " + expected) for e in found), found


def test_macos_only_modes_are_warned_about() -> None:
    parsed = parse("services:\n  web: {image: a, volumes: ['/a:/a:cached']}\n")
    assert parsed.warnings == ["services.web.volumes[0]: ignored volume options: cached (line 2)"]
