"""The Compose keys of issue 11: container options, the privileged keys the cluster's policy
decides on, legacy resource keys, profiles and bind-mount sources (parser side)."""

from __future__ import annotations

import textwrap
from typing import Any

import pytest
from google.protobuf import json_format

from ccs.testing.clusters import POLICY_NAMES
from controlplane.api.app_policy import refusals
from controlplane.compose import ParsedTemplate, TemplateError, parse_template
from controlplane.compose.security import POLICY_KEYS


def parse(text: str, *, env: dict[str, str] | None = None, files: dict[str, str] | None = None,
          profiles: tuple[str, ...] = ()) -> ParsedTemplate:
    return parse_template(textwrap.dedent(text), env=env or {}, files=files or {}, app_name="app",
                          profiles=profiles)


def web(body: str) -> dict[str, Any]:
    text = "services:\n  web:\n    image: nginx:1\n" + textwrap.indent(textwrap.dedent(body), "    ")
    parsed = parse(text)
    return json_format.MessageToDict(parsed.services["web"], preserving_proto_field_name=True)


def errors(text: str, **kw: Any) -> list[str]:
    with pytest.raises(TemplateError) as info:
        parse(text, **kw)
    return [str(e) for e in info.value.errors]


def web_errors(body: str) -> list[str]:
    return errors("services:\n  web:\n    image: nginx:1\n" + textwrap.indent(textwrap.dedent(body), "    "))


# ---------------------------------------------------------------- narrowing and harmless keys

CASES: list[tuple[str, str, dict[str, Any]]] = [
    ("cap_drop", "cap_drop: [ALL, net_raw, CAP_CHOWN]", {"cap_drop": ["ALL", "CAP_NET_RAW", "CAP_CHOWN"]}),
    ("cap_add of a default capability", "cap_add: [NET_BIND_SERVICE]", {"cap_add": ["CAP_NET_BIND_SERVICE"]}),
    (
        "narrowing security_opt",
        "security_opt: ['no-new-privileges:true', 'seccomp=/etc/ccs/seccomp/web.json', 'apparmor:web-profile']",
        {"security_opt": ["no-new-privileges", "seccomp=/etc/ccs/seccomp/web.json", "apparmor=web-profile"]},
    ),
    ("no-new-privileges alone", "security_opt: [no-new-privileges]", {"security_opt": ["no-new-privileges"]}),
    ("read_only", "read_only: 'true'", {"read_only": True}),
    ("init", "init: true", {"init": True}),
    ("init false is kept (it overrides an engine default)", "init: false", {"init": False}),
    (
        "ulimits single and soft/hard",
        "ulimits:\n  nproc: 65535\n  nofile: {soft: 20000, hard: 40000}\n  memlock: -1",
        {"ulimits": [
            {"name": "nproc", "soft": "65535", "hard": "65535"},
            {"name": "nofile", "soft": "20000", "hard": "40000"},
            {"name": "memlock", "soft": "-1", "hard": "-1"},
        ]},
    ),
    ("shm_size", "shm_size: 256m", {"shm_size_bytes": str(256 << 20)}),
    (
        "namespaced sysctls, map",
        "sysctls:\n  net.core.somaxconn: 1024\n  kernel.shmmax: 68719476736\n  fs.mqueue.msg_max: 100",
        {"sysctls": {"net.core.somaxconn": "1024", "kernel.shmmax": "68719476736", "fs.mqueue.msg_max": "100"}},
    ),
    ("namespaced sysctls, list", "sysctls: [net.ipv4.tcp_syncookies=0]", {"sysctls": {"net.ipv4.tcp_syncookies": "0"}}),
    (
        "extra_hosts list and map",
        "extra_hosts: ['db.local:10.0.0.7', 'v6=::1', 'gw=host-gateway']",
        {"extra_hosts": ["db.local:10.0.0.7", "v6:::1", "gw:host-gateway"]},
    ),
    (
        "extra_hosts map with several addresses",
        "extra_hosts:\n  a: 10.0.0.1\n  b: [10.0.0.2, 10.0.0.3]",
        {"extra_hosts": ["a:10.0.0.1", "b:10.0.0.2", "b:10.0.0.3"]},
    ),
    ("dns string", "dns: 9.9.9.9", {"dns": ["9.9.9.9"]}),
    ("dns list", "dns: [9.9.9.9, '2620:fe::fe']", {"dns": ["9.9.9.9", "2620:fe::fe"]}),
    ("dns_search", "dns_search: [svc.example.com, example.com]", {"dns_search": ["svc.example.com", "example.com"]}),
    ("dns_opt", "dns_opt: ['ndots:2', rotate, edns0]", {"dns_opt": ["ndots:2", "rotate", "edns0"]}),
    ("group_add", "group_add: [audio, 1000]", {"group_add": ["audio", "1000"]}),
    (
        "tmpfs with options",
        "tmpfs: ['/run:size=64m,mode=1777,noexec', /tmp, '/cache:size=50%']",
        {"tmpfs": {"/run": "size=64m,mode=1777,noexec", "/tmp": "", "/cache": "size=50%"}},
    ),
    ("stop_signal", "stop_signal: SIGINT", {"stop_signal": "SIGINT"}),
    ("oom_score_adj positive", "oom_score_adj: 500", {"oom_score_adj": 500}),
    (
        "legacy resources",
        "cpus: 1.5\nmem_limit: 512m\nmem_reservation: 128m\npids_limit: 200\ncpu_shares: 512",
        {
            "resources": {
                "limits": {"cpus": 1.5, "memory_bytes": str(512 << 20), "pids": "200"},
                "reservations": {"memory_bytes": str(128 << 20)},
            },
            "cpu_shares": "512",
        },
    ),
    (
        "legacy key equal to its deploy twin",
        "mem_limit: 1g\ndeploy: {resources: {limits: {memory: 1024m}}}",
        {"resources": {"limits": {"memory_bytes": str(1 << 30)}}},
    ),
    ("pids_limit -1 is no limit", "pids_limit: -1", {"resources": None}),
]


@pytest.mark.parametrize(("body", "expected"), [(c[1], c[2]) for c in CASES], ids=[c[0] for c in CASES])
def test_key_conversion(body: str, expected: dict[str, Any]) -> None:
    spec = web(body)
    for key, value in expected.items():
        assert spec.get(key) == value, (key, spec)


def test_narrowing_keys_need_no_policy() -> None:
    parsed = parse("""
        services:
          web:
            image: a
            cap_drop: [ALL]
            cap_add: [NET_BIND_SERVICE, CHOWN]
            security_opt: [no-new-privileges, 'seccomp=/p.json', 'apparmor=x']
            sysctls: {net.core.somaxconn: 1024}
            oom_score_adj: 10
            read_only: true
        """)
    assert parsed.privileged == []


# ---------------------------------------------------------------- errors name the field

ERRORS = [
    ("unknown ulimit", "ulimits: {nofiles: 10}", "services.web.ulimits.nofiles: unknown ulimit"),
    ("soft above hard", "ulimits: {nofile: {soft: 20, hard: 10}}",
     "services.web.ulimits.nofile.soft: 20 is above the hard limit 10"),
    ("bad soft", "ulimits: {nofile: {soft: many, hard: 10}}", "services.web.ulimits.nofile.soft: must be an integer"),
    ("shm_size", "shm_size: huge", "services.web.shm_size: must be a size like"),
    ("host sysctl", "sysctls: {kernel.panic: 1}",
     "services.web.sysctls.kernel.panic: kernel.panic is not namespaced per container"),
    ("sysctl list form", "sysctls: [vm.swappiness=10]", "services.web.sysctls[0]: vm.swappiness is not namespaced"),
    ("sysctl without value", "sysctls: [net.core.somaxconn]", "services.web.sysctls[0]: must be NAME=VALUE"),
    ("extra_hosts ip", "extra_hosts: ['db:not-an-ip']", "services.web.extra_hosts[0]: 'not-an-ip' is not an IP address"),
    ("extra_hosts form", "extra_hosts: [justaname]", "services.web.extra_hosts[0]: must be HOSTNAME=IP"),
    ("dns", "dns: [dns.google]", "services.web.dns[0]: 'dns.google' is not an IP address"),
    ("dns string", "dns: nope", "services.web.dns: 'nope' is not an IP address"),
    ("dns_search", "dns_search: ['bad domain']", "services.web.dns_search[0]: 'bad domain' is not a DNS domain"),
    ("dns_opt", "dns_opt: ['ndots 2']", "services.web.dns_opt[0]: 'ndots 2' is not a resolver option"),
    ("group_add", "group_add: ['a b']", "services.web.group_add[0]: 'a b' is not a group name or number"),
    ("tmpfs relative", "tmpfs: [run]", "services.web.tmpfs[0]: the mount point 'run' must be an absolute path"),
    ("tmpfs option", "tmpfs: '/run:bogus=1'", "services.web.tmpfs: unknown tmpfs option 'bogus=1'"),
    ("tmpfs size", "tmpfs: ['/run:size=lots']", "services.web.tmpfs[0]: must be a size like"),
    ("tmpfs mode", "tmpfs: ['/run:mode=rwx']", "services.web.tmpfs[0]: mode must be octal"),
    ("tmpfs clash", "tmpfs: [/data]\nvolumes: ['/srv:/data']", "services.web.tmpfs[0]: /data is already a mount point"),
    ("cap name", "cap_drop: [NET_FLY]", "services.web.cap_drop[0]: unknown capability 'NET_FLY'"),
    ("security_opt form", "security_opt: [whatever]", "services.web.security_opt[0]: 'whatever' must be"),
    ("seccomp relative", "security_opt: ['seccomp=web.json']",
     "services.web.security_opt[0]: seccomp takes the absolute path of a JSON profile on the node"),
    ("selinux label", "security_opt: ['label=type:svirt_t']",
     "services.web.security_opt[0]: SELinux labels other than label=disable are not supported"),
    ("unknown security_opt", "security_opt: ['mask=/proc']", "services.web.security_opt[0]: unknown option 'mask'"),
    ("no-new-privileges value", "security_opt: ['no-new-privileges=maybe']",
     "services.web.security_opt[0]: no-new-privileges takes true or false"),
    ("device CDI", "devices: ['vendor.com/gpu=all']", "services.web.devices[0]: 'vendor.com/gpu=all' is not a device path"),
    ("device perms", "devices: ['/dev/fuse:/dev/fuse:rwx']", "services.web.devices[0]: permissions must be letters"),
    ("oom_score_adj range", "oom_score_adj: '2000'", "services.web.oom_score_adj: must be <= 1000"),
    ("cpu_shares", "cpu_shares: 1", "services.web.cpu_shares: must be >= 2"),
    ("init", "init: sometimes", "services.web.init: must be true or false"),
    ("stop_signal", "stop_signal: 'kill -9'", "services.web.stop_signal: must be a signal"),
    ("mem_limit", "mem_limit: lots", "services.web.mem_limit: must be a size like"),
    (
        "legacy disagrees with deploy",
        "mem_limit: 512m\ndeploy: {resources: {limits: {memory: 1g}}}",
        "services.web.mem_limit: mem_limit=512m disagrees with deploy.resources.limits.memory=1g",
    ),
    (
        "cpus disagrees with deploy",
        "cpus: 2\ndeploy: {resources: {limits: {cpus: '0.5'}}}",
        "services.web.cpus: cpus=2 disagrees with deploy.resources.limits.cpus=0.5",
    ),
    (
        "reservation disagrees",
        "mem_reservation: 64m\ndeploy: {resources: {reservations: {memory: 32m}}}",
        "services.web.mem_reservation: mem_reservation=64m disagrees with deploy.resources.reservations.memory=32m",
    ),
    ("network_mode bridge", "network_mode: bridge", "services.web.network_mode: only host is supported"),
    ("host network with ports", "network_mode: host\nports: ['80:80']",
     "services.web.ports: the container uses the node's network (network_mode: host)"),
    ("host network with networks", "network_mode: host\nnetworks: [default]",
     "services.web.networks: the container uses the node's network"),
    ("host network with a route", "network_mode: host\nx-ccs: {routes: [{port: 80, domain: a.example.com}]}",
     "services.web: the container uses the node's network (network_mode: host): the router reaches"),
    ("host network sysctl", "network_mode: host\nsysctls: {net.core.somaxconn: 10}",
     "services.web.sysctls.net.core.somaxconn: net.core.somaxconn would set the node's network stack"),
]


@pytest.mark.parametrize(("body", "expected"), [(c[1], c[2]) for c in ERRORS], ids=[c[0] for c in ERRORS])
def test_errors_name_the_field(body: str, expected: str) -> None:
    found = web_errors(body)
    assert any(e.startswith(expected) for e in found), found


# ---------------------------------------------------------------- privileged keys

PRIVILEGED = [
    ("privileged: true", "services.web.privileged", "privileged"),
    ("cap_add: [CHOWN, SYS_ADMIN]", "services.web.cap_add[1]", "cap_add"),
    ("cap_add: [ALL]", "services.web.cap_add[0]", "cap_add"),
    ("devices: ['/dev/fuse']", "services.web.devices[0]", "devices"),
    ("network_mode: host", "services.web.network_mode", "network_mode"),
    ("pid: host", "services.web.pid", "pid"),
    ("security_opt: [no-new-privileges, 'seccomp:unconfined']", "services.web.security_opt[1]", "security_opt"),
    ("security_opt: ['apparmor=unconfined']", "services.web.security_opt[0]", "security_opt"),
    ("security_opt: ['label:disable']", "services.web.security_opt[0]", "security_opt"),
    ("security_opt: ['systempaths=unconfined']", "services.web.security_opt[0]", "security_opt"),
    ("security_opt: ['no-new-privileges=false']", "services.web.security_opt[0]", "security_opt"),
    ("oom_score_adj: -500", "services.web.oom_score_adj", "oom_score_adj"),
]


@pytest.mark.parametrize(("body", "path", "policy"), PRIVILEGED, ids=[c[0] for c in PRIVILEGED])
def test_privileged_values_are_recorded_with_their_path_and_policy(body: str, path: str, policy: str) -> None:
    parsed = parse("services:\n  web:\n    image: a\n    " + body + "\n  other: {image: b}\n")
    assert [(u.path, u.policy) for u in parsed.privileged] == [(path, policy)]
    assert policy in POLICY_KEYS


def test_privileged_values_reach_the_spec() -> None:
    spec = web("""
        privileged: true
        cap_add: [SYS_ADMIN]
        devices: ['/dev/fuse', {source: /dev/net/tun, target: /dev/tun, permissions: rw}]
        network_mode: host
        pid: host
        security_opt: ['seccomp=unconfined', 'label=disable', 'systempaths=unconfined']
        oom_score_adj: -900
        """)
    assert spec["privileged"] is True
    assert spec["cap_add"] == ["CAP_SYS_ADMIN"]
    assert spec["devices"] == [
        {"path_on_host": "/dev/fuse", "path_in_container": "/dev/fuse", "permissions": "rwm"},
        {"path_on_host": "/dev/net/tun", "path_in_container": "/dev/tun", "permissions": "rw"},
    ]
    assert (spec["network_mode"], spec["pid"], spec["oom_score_adj"]) == ("host", "host", -900)
    assert spec["security_opt"] == ["seccomp=unconfined", "label=disable", "systempaths=unconfined"]


def test_refusals_name_the_field_and_the_policy_to_change() -> None:
    parsed = parse("services:\n  web: {image: a, privileged: true, pid: host}\n")
    assert refusals("prod", {"pid"}, parsed.privileged) == [
        "services.web.privileged: privileged: true is refused by the policy of cluster prod; "
        "allow with `ccs cluster update prod --allow privileged`"
    ]
    assert refusals("prod", {"pid", "privileged"}, parsed.privileged) == []


def test_the_fake_api_knows_the_servers_policy_names() -> None:
    assert tuple(POLICY_KEYS) == POLICY_NAMES


def test_uses_of_services_left_out_by_profiles_do_not_count() -> None:
    text = "services:\n  web: {image: a}\n  debug: {image: b, privileged: true, profiles: [debug]}\n"
    assert parse(text).privileged == []
    assert [u.path for u in parse(text, profiles=("debug",)).privileged] == ["services.debug.privileged"]


# ---------------------------------------------------------------- bind-mount sources

@pytest.mark.parametrize(
    ("volume", "expected"),
    [
        ("./data:/data", "services.web.volumes[0]: bind mount source './data' is relative to the template's"),
        ("../data:/data", "services.web.volumes[0]: bind mount source '../data' is relative"),
        (".:/src", "services.web.volumes[0]: bind mount source '.' is relative"),
        ("~/data:/data", "services.web.volumes[0]: bind mount source '~/data' is in a home directory"),
        ("{type: bind, source: conf, target: /conf}", "services.web.volumes[0]: bind mount source 'conf' is relative"),
    ],
)
def test_relative_and_home_bind_sources_are_refused(volume: str, expected: str) -> None:
    found = web_errors(f"volumes: [{volume}]")
    assert any(e.startswith(expected) for e in found), found


# ---------------------------------------------------------------- profiles

PROFILED = """
services:
  web: {image: a, depends_on: [db]}
  db: {image: b}
  debug: {image: c, profiles: [debug, all]}
  metrics: {image: d, profiles: [ops]}
  admin: {image: e, profiles: [ops], depends_on: [debug]}
"""


@pytest.mark.parametrize(
    ("chosen", "services"),
    [
        ((), ["db", "web"]),
        (("debug",), ["db", "web", "debug"]),
        (("all",), ["db", "web", "debug"]),
        (("debug", "ops"), ["db", "web", "debug", "metrics", "admin"]),
        (("*",), ["db", "web", "debug", "metrics", "admin"]),
    ],
)
def test_profiles_choose_the_services(chosen: tuple[str, ...], services: list[str]) -> None:
    assert list(parse(PROFILED, profiles=chosen).services) == services


def test_a_dependency_left_out_by_profiles_is_refused_naming_the_profile() -> None:
    found = errors(PROFILED, profiles=("ops",))
    assert found == [
        "services.admin.depends_on: service 'debug' is not deployed: its profiles (debug, all) are not chosen; "
        "add --profile debug (line 7)"
    ]


def test_an_optional_dependency_left_out_is_dropped_with_a_warning() -> None:
    parsed = parse("""
        services:
          web:
            image: a
            depends_on: {debug: {condition: service_started, required: false}}
          debug: {image: c, profiles: [debug]}
        """)
    assert list(parsed.services) == ["web"]
    assert not parsed.services["web"].depends_on
    assert any("optional dependency 'debug' is not deployed" in w for w in parsed.warnings), parsed.warnings


def test_compose_profiles_from_env_or_dotenv_choose_when_no_profile_is_given() -> None:
    assert list(parse(PROFILED, env={"COMPOSE_PROFILES": "debug, ops"}).services)[-1] == "admin"
    assert "debug" in parse(PROFILED, files={".env": "COMPOSE_PROFILES=debug\n"}).services
    # --profile wins over COMPOSE_PROFILES, as in Compose
    assert "debug" not in parse(PROFILED, env={"COMPOSE_PROFILES": "debug"}, profiles=("ops2",)).services


def test_profile_names_are_checked_and_unused_ones_warned() -> None:
    assert errors("services:\n  web: {image: a}\n", profiles=("-bad",)) == [
        "profiles[0]: '-bad' is not a profile name (letters, digits, '_', '.', '-')"
    ]
    found = errors("services:\n  web: {image: a, profiles: ['no way']}\n", profiles=("x",))
    assert any(e.startswith("services.web.profiles[0]: 'no way' is not a profile name") for e in found), found
    parsed = parse("services:\n  web: {image: a}\n", profiles=("nothing",))
    assert parsed.warnings == ["profiles: profile 'nothing' is not used by any service"]


def test_a_template_whose_services_all_have_unchosen_profiles_is_refused() -> None:
    assert errors("services:\n  a: {image: a, profiles: [x]}\n") == [
        "services: every service has profiles: and none of them is chosen; deploy with --profile NAME (line 1)"
    ]


def test_services_left_out_may_publish_the_same_port() -> None:
    """Alternatives (dev and prod variants of a service) often publish one port; only the
    services deployed can clash."""
    text = """
        services:
          dev: {image: a, ports: ['80:80'], profiles: [dev]}
          prod: {image: b, ports: ['80:80'], profiles: [prod]}
        """
    assert list(parse(text, profiles=("prod",)).services) == ["prod"]
    assert any("already published" in e for e in errors(text, profiles=("dev", "prod")))
