"""aliyun.* labels and the x-ccs extension: conversion, validation and disagreement checks."""

from __future__ import annotations

import textwrap

import pytest
from google.protobuf import json_format

from controlplane.compose import TemplateError, parse_template


def parse_web(body: str, extra: str = "") -> dict[str, object]:
    text = "services:\n  web:\n    image: w\n" + textwrap.indent(textwrap.dedent(body), "    ") + extra
    spec = parse_template(text, env={}, files={}, app_name="app").services["web"]
    return json_format.MessageToDict(spec, preserving_proto_field_name=True)


def errors_of(body: str, extra: str = "") -> list[str]:
    with pytest.raises(TemplateError) as info:
        parse_web(body, extra)
    return [str(e) for e in info.value.errors]


LABEL_CASES = [
    ("aliyun.scale: '3'", {"replicas": 3}),
    ("aliyun.global: 'true'", {"mode": "SERVICE_MODE_GLOBAL"}),
    ("aliyun.rolling_updates: 'true'", {"strategy": "rolling"}),
    ("aliyun.rolling_updates.parallelism: '2'", {"update_config": {"parallelism": 2}}),
    (
        "aliyun.probe.url: http://container:8080/health\naliyun.probe.timeout_seconds: '3'\n"
        "aliyun.probe.initial_delay_seconds: '5'",
        {
            "probe": {
                "kind": "http",
                "port": 8080,
                "path": "/health",
                "timeout_seconds": 3,
                "initial_delay_seconds": 5,
            }
        },
    ),
    ("aliyun.probe.url: tcp://container:5432", {"probe": {"kind": "tcp", "port": 5432}}),
    ("aliyun.probe.cmd: pg_isready -U app", {"probe": {"kind": "cmd", "cmd": ["pg_isready", "-U", "app"]}}),
    (
        "aliyun.routing.port_80: 'http://www.example.com;api.example.com:/v1;web'",
        {
            "routes": [
                {"port": 80, "domain": "api.example.com", "path": "/v1"},
                {"port": 80, "domain": "web", "path": "/"},
                {"port": 80, "domain": "www.example.com", "path": "/"},
            ]
        },
    ),
    ("aliyun.routing.session_sticky: 'true'", {"session_sticky": True}),
    ("aliyun.latest_image: 'true'", {"always_pull": True}),
]


@pytest.mark.parametrize(("labels", "expected"), LABEL_CASES)
def test_aliyun_label(labels: str, expected: dict[str, object]) -> None:
    spec = parse_web("labels:\n" + textwrap.indent(labels, "  "))
    for key, value in expected.items():
        assert spec[key] == value
    first_label = labels.split(":")[0]
    kept = spec["labels"]
    assert isinstance(kept, dict)
    assert first_label in kept  # the labels are kept too


def test_aliyun_depends_adds_dependencies() -> None:
    text = textwrap.dedent("""
        services:
          web: {image: w, labels: {aliyun.depends: 'db, cache'}}
          db: {image: d}
          cache: {image: c}
        """)
    parsed = parse_template(text, env={}, files={}, app_name="app")
    assert [d.service for d in parsed.services["web"].depends_on] == ["db", "cache"]
    assert list(parsed.services) == ["db", "cache", "web"]


def test_unknown_aliyun_label_is_kept_with_a_warning() -> None:
    text = "services:\n  web: {image: w, labels: {aliyun.log_store_x: stdout}}\n"
    parsed = parse_template(text, env={}, files={}, app_name="app")
    assert parsed.services["web"].labels["aliyun.log_store_x"] == "stdout"
    assert any("aliyun.log_store_x: this aliyun label has no meaning" in w for w in parsed.warnings)


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        (
            "labels: {aliyun.scale: '3'}\ndeploy: {replicas: 2}",
            "services.web.labels.aliyun.scale: labels.aliyun.scale=3 disagrees with deploy.replicas=2",
        ),
        (
            "labels: {aliyun.global: 'true'}\ndeploy: {mode: replicated}",
            "labels.aliyun.global=true disagrees with deploy.mode=replicated",
        ),
        (
            "labels: {aliyun.rolling_updates.parallelism: '3'}\ndeploy: {update_config: {parallelism: 1}}",
            "labels.aliyun.rolling_updates.parallelism=3 disagrees with deploy.update_config.parallelism=1",
        ),
        (
            "labels: {aliyun.rolling_updates: 'true'}\nx-ccs: {strategy: canary}",
            "x-ccs.strategy=canary disagrees with labels.aliyun.rolling_updates=true",
        ),
        (
            "labels: {aliyun.routing.session_sticky: 'true'}\nx-ccs: {session_sticky: false}",
            "x-ccs.session_sticky=False disagrees with labels.aliyun.routing.session_sticky=true",
        ),
        (
            "labels: {aliyun.routing.port_80: a.example.com}\n"
            "x-ccs: {routes: [{port: 80, domain: b.example.com}]}",
            "x-ccs.routes=[...] disagrees with labels.aliyun.routing.port_80=a.example.com",
        ),
        (
            "labels: {aliyun.probe.url: 'tcp://container:80'}\nx-ccs: {probe: {tcp: {port: 81}}}",
            "x-ccs.probe={...} disagrees with labels.aliyun.probe.url=tcp://container:80",
        ),
        ("scale: 2\ndeploy: {replicas: 3}", "deploy.replicas=3 disagrees with scale=2"),
        (
            "pull_policy: always\nlabels: {aliyun.latest_image: 'false'}",
            "pull_policy=always disagrees with labels.aliyun.latest_image=false",
        ),
        (
            "deploy: {mode: global, replicas: 2}",
            "services.web.deploy.replicas: replicas cannot be set when the mode is global",
        ),
        ("labels: {aliyun.scale: 'many'}", "services.web.labels.aliyun.scale: must be an integer"),
        ("labels: {aliyun.scale: '1001'}", "services.web.labels.aliyun.scale: must be <= 1000"),
        ("labels: {aliyun.global: 'maybe'}", "services.web.labels.aliyun.global: must be true or false"),
        (
            "labels: {aliyun.probe.url: 'ftp://x:1'}",
            "services.web.labels.aliyun.probe.url: must be http://container:PORT/path",
        ),
        ("labels: {aliyun.probe.url: 'tcp://c:1/x'}", "a tcp probe takes no path"),
        (
            "labels: {aliyun.probe.url: 'http://c:1/', aliyun.probe.cmd: 'true'}",
            "use either aliyun.probe.url or aliyun.probe.cmd",
        ),
        ("labels: {aliyun.probe.timeout_seconds: '3'}", "needs aliyun.probe.url or aliyun.probe.cmd"),
        (
            "labels: {aliyun.routing.port_99999: a.com}",
            "services.web.labels.aliyun.routing.port_99999: must be <= 65535",
        ),
        ("labels: {aliyun.routing.port_80: 'bad_domain!'}", "'bad_domain!' is not a valid domain name"),
    ],
)
def test_alias_errors_name_both_sides(body: str, expected: str) -> None:
    assert any(expected in e for e in errors_of(body)), errors_of(body)


def test_agreeing_sources_are_fine() -> None:
    spec = parse_web(
        "labels: {aliyun.scale: '2', aliyun.latest_image: 'true'}\ndeploy: {replicas: 2}\n"
        "x-ccs: {always_pull: true}"
    )
    assert (spec["replicas"], spec["always_pull"]) == (2, True)


def test_x_ccs_extension() -> None:
    spec = parse_web(
        textwrap.dedent("""\
        x-ccs:
          strategy: blue-green
          routes: [{port: 80, domain: WWW.Example.com, path: api}]
          session_sticky: true
          always_pull: 'true'
          probe: {http: {port: 8080}, timeout_seconds: 2, initial_delay_seconds: '4'}
        """)
    )
    assert spec["strategy"] == "blue-green"
    assert spec["routes"] == [{"port": 80, "domain": "www.example.com", "path": "/api"}]
    assert (spec["session_sticky"], spec["always_pull"]) == (True, True)
    assert spec["probe"] == {
        "kind": "http",
        "port": 8080,
        "path": "/",
        "timeout_seconds": 2,
        "initial_delay_seconds": 4,
    }
    assert parse_web("x-ccs: {probe: {cmd: [pg_isready]}}")["probe"] == {"kind": "cmd", "cmd": ["pg_isready"]}


def test_x_ccs_route_tls_names_a_secret_version_or_the_latest() -> None:
    spec = parse_web("x-ccs: {routes: [{port: 80, domain: a.example, tls: {secret: a-cert}},"
                     " {port: 80, domain: b.example, tls: {secret: b-cert@3}}, {port: 80, domain: c.example}]}")
    assert spec["routes"] == [
        {"port": 80, "domain": "a.example", "path": "/", "tls": {"secret": "a-cert"}},  # version: at deploy
        {"port": 80, "domain": "b.example", "path": "/", "tls": {"secret": "b-cert", "version": "3", "pinned": True}},
        {"port": 80, "domain": "c.example", "path": "/"},
    ]


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        (
            "x-ccs: {strategy: big-bang}",
            "services.web.x-ccs.strategy: must be one of: rolling, blue-green, canary",
        ),
        ("x-ccs: {colour: blue}", "services.web.x-ccs.colour: unknown key"),
        ("x-ccs: {routes: [{port: 80}]}", "services.web.x-ccs.routes[0].domain: is required"),
        ("x-ccs: {routes: [{port: 0, domain: a.com}]}", "services.web.x-ccs.routes[0].port: must be >= 1"),
        (
            "x-ccs: {probe: {http: {port: 80}, tcp: {port: 80}}}",
            "services.web.x-ccs.probe: needs exactly one of http, tcp or cmd",
        ),
        ("x-ccs: {probe: {}}", "services.web.x-ccs.probe: needs exactly one of http, tcp or cmd"),
        ("x-ccs: {session_sticky: 3}", "services.web.x-ccs.session_sticky: must be a boolean or a string"),
        ("x-ccs: {replace_unhealthy: 3}", "services.web.x-ccs.replace_unhealthy: must be a boolean or a string"),
        ("x-ccs: {replace_unhealthy: maybe}", "services.web.x-ccs.replace_unhealthy: must be true or false"),
        ("x-ccs: [1]", "services.web.x-ccs: must be a mapping, got a list"),
        ("x-ccs: {routes: [{port: 80, domain: a.com, tls: {}}]}", "services.web.x-ccs.routes[0].tls.secret: is required"),
        ("x-ccs: {routes: [{port: 80, domain: a.com, tls: {secret: c, key: k}}]}",
         "services.web.x-ccs.routes[0].tls.key: unknown key"),
        ("x-ccs: {routes: [{port: 80, domain: a.com, tls: {secret: 'no way'}}]}",
         "services.web.x-ccs.routes[0].tls.secret: 'no way' is not a valid name"),
        ("x-ccs: {routes: [{port: 80, domain: a.com, tls: {secret: c@0}}]}",
         "services.web.x-ccs.routes[0].tls.secret: 'c@0': the version after '@' must be a positive number"),
        ("x-ccs: {routes: [{port: 80, domain: web, tls: {secret: c}}]}",
         "services.web.x-ccs.routes[0].domain: an HTTPS route needs a full domain name"),
    ],
)
def test_x_ccs_validation(body: str, expected: str) -> None:
    assert any(expected in e for e in errors_of(body)), errors_of(body)


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        ("", None),  # unset: replaced (the default)
        ("x-ccs: {replace_unhealthy: false}", False),
        ("x-ccs: {replace_unhealthy: 'false'}", False),
        ("x-ccs: {replace_unhealthy: true}", True),
    ],
)
def test_x_ccs_replace_unhealthy_reaches_the_spec(body: str, expected: bool | None) -> None:
    assert parse_web(body).get("replace_unhealthy") == expected
