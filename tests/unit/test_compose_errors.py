"""Refusals and errors: each names the field path and says what is wrong; all are reported."""

from __future__ import annotations

import textwrap

import pytest

from controlplane.compose import MAX_TEMPLATE_BYTES, TemplateError, parse_template


def errors(text: str, env: dict[str, str] | None = None, files: dict[str, str] | None = None) -> list[str]:
    with pytest.raises(TemplateError) as info:
        parse_template(textwrap.dedent(text), env=env or {}, files=files or {}, app_name="app")
    assert str(info.value) == "; ".join(str(e) for e in info.value.errors)
    return [str(e) for e in info.value.errors]


CASES = [
    (
        "external network with its own settings",
        "services:\n  web: {image: a}\nnetworks:\n  shared: {external: true, internal: true}\n",
        "networks.shared.internal: cannot be set on an external network: it is the cluster network's",
    ),
    (
        "fixed network name without external",
        "services:\n  web: {image: a}\nnetworks:\n  back: {name: x}\n",
        "networks.back.name: is only for external networks",
    ),
    (
        "network driver",
        "services:\n  web: {image: a}\nnetworks:\n  back: {driver: macvlan}\n",
        "networks.back.driver: 'macvlan' is not supported: use bridge or overlay",
    ),
    ("broken yaml", "services:\n  web: [\n", "template: invalid YAML at line 3, column 1"),
    ("duplicate key", "services:\n  web: {image: a}\n  web: {image: b}\n", 'found duplicate key "web"'),
    ("not a mapping", "- a\n- b\n", "template: must be a YAML mapping"),
    ("empty", "", "template: is empty"),
    ("no services", "volumes: {a: {}}\n", "services: is required and must name at least one service"),
    (
        "unknown key with hint",
        "services:\n  web: {image: a, prots: ['80:80']}\n",
        "services.web.prots: unknown key (not in the Compose specification); did you mean 'ports'? (line 2)",
    ),
    (
        "wrong type",
        "services:\n  web: {image: a, environment: 3}\n",
        "services.web.environment: must be a mapping or a list, got a number",
    ),
    (
        "oneOf picks relevant branch",
        "services:\n  web:\n    image: a\n    ports:\n      - {target: 80, bogus: 1}\n",
        "services.web.ports[0].bogus: unknown key",
    ),
    (
        "enum",
        "services:\n  web:\n    image: a\n    depends_on: {db: {condition: started}}\n  db: {image: d}\n",
        "services.web.depends_on.db.condition: must be one of: service_started",
    ),
    (
        "replicas bound",
        "services:\n  web: {image: a, deploy: {replicas: 1001}}\n",
        "services.web.deploy.replicas: must be <= 1000",
    ),
    (
        "replicas not a number",
        "services:\n  web: {image: a, deploy: {replicas: '${N}'}}\n",
        "services.web.deploy.replicas: must be an integer, got 'x'",
    ),
    (
        "required variable",
        "services:\n  web: {image: 'a:${TAG:?set TAG to the release}'}\n",
        "services.web.image: required variable TAG is missing a value: set TAG to the release",
    ),
    (
        "build without image",
        "services:\n  web: {build: .}\n",
        "services.web.build: the server runs images, it does not build them: deploy with `ccs app deploy|update|apply --build` (the CLI builds with the local Docker engine, pushes and deploys the pushed image), or build and push it yourself and set image:",
    ),
    ("no image", "services:\n  web: {command: x}\n", "services.web.image: is required"),
    (
        "bad service name",
        "services:\n  Web_1: {image: a}\n",
        "services.Web_1: service names must be DNS labels",
    ),
    (
        "network_mode none",
        "services:\n  web: {image: a, network_mode: none}\n",
        "services.web.network_mode: only host is supported",
    ),
    ("pid of another container", "services:\n  web: {image: a, pid: 'service:db'}\n", "services.web.pid: only host"),
    ("ipc", "services:\n  web: {image: a, ipc: host}\n", "services.web.ipc: is not supported"),
    (
        "secret driver",
        "services:\n  web: {image: a, secrets: [s]}\nsecrets: {s: {file: s.txt, driver: vault}}\n",
        "secrets.s.driver: is not supported: ccs stores secrets and configs itself",
    ),
    (
        "secret file not bundled",
        "services:\n  web: {image: a, secrets: [s]}\nsecrets: {s: {file: s.txt}}\n",
        "secrets.s.file: file 's.txt' was not provided with the template",
    ),
    (
        "secret not defined",
        "services:\n  web: {image: a, secrets: [nope]}\n",
        "services.web.secrets[0]: secret 'nope' is not defined under the top-level secrets:",
    ),
    ("cpu_quota hint", "services:\n  web: {image: a, cpu_quota: 50000}\n", "use deploy.resources"),
    ("memswap_limit", "services:\n  web: {image: a, memswap_limit: 1g}\n", "drop it silently"),
    (
        "ipam",
        "services:\n  web: {image: a}\nnetworks: {n: {ipam: {config: [{subnet: 10.0.0.0/24}]}}}\n",
        "networks.n.ipam: is not supported",
    ),
    (
        "static ip",
        "services:\n  web: {image: a, networks: {n: {ipv4_address: 10.0.0.2}}}\nnetworks: {n: {}}\n",
        "services.web.networks.n.ipv4_address: is not supported",
    ),
    (
        "undeclared network",
        "services:\n  web: {image: a, networks: [nope]}\n",
        "services.web.networks[0]: network 'nope' is not declared",
    ),
    (
        "undeclared volume",
        "services:\n  web: {image: a, volumes: ['nope:/x']}\n",
        "services.web.volumes[0]: volume 'nope' is not declared",
    ),
    (
        "volume type",
        "services:\n  web: {image: a, volumes: [{type: npipe, source: x, target: /x}]}\n",
        "services.web.volumes[0]: type 'npipe' is not supported",
    ),
    ("bad volume mode", "services:\n  web: {image: a, volumes: ['/x:/x:rx']}\n", "unknown volume mode 'rx'"),
    (
        "bad port",
        "services:\n  web: {image: a, ports: ['80:80:80:80']}\n",
        "services.web.ports[0]: must look like",
    ),
    ("port protocol", "services:\n  web: {image: a, ports: ['80:80/sctp']}\n", "protocol must be tcp or udp"),
    (
        "port out of range",
        "services:\n  web: {image: a, ports: ['70000:80']}\n",
        "host port 70000 must be between 1 and 65535",
    ),
    (
        "host range for one port",
        "services:\n  web: {image: a, ports: ['8000-8010:80']}\n",
        "a host port range (8000-8010) for one container port is not supported",
    ),
    ("range sizes", "services:\n  web: {image: a, ports: ['8000-8002:80-81']}\n", "differ in size"),
    (
        "duplicate port across services",
        "services:\n  a: {image: a, ports: ['80:80']}\n  b: {image: b, ports: ['80:8080']}\n",
        "services.b.ports[0]: host port 80/tcp is already published by services.a.ports[0]",
    ),
    (
        "duplicate port in one service",
        "services:\n  a: {image: a, ports: ['80:80', '0.0.0.0:80:81']}\n",
        "services.a.ports[1]: host port 80/tcp is already published by services.a.ports[0]",
    ),
    (
        "unknown dependency",
        "services:\n  web: {image: a, depends_on: [db]}\n",
        "services.web.depends_on: service 'db' is not defined",
    ),
    (
        "cycle",
        "services:\n  web: {image: a, depends_on: [api]}\n  api: {image: b, depends_on: [web]}\n",
        "services.web.depends_on: dependency cycle: web -> api -> web",
    ),
    ("self cycle", "services:\n  web: {image: a, depends_on: [web]}\n", "dependency cycle: web -> web"),
    (
        "duration",
        "services:\n  web: {image: a, stop_grace_period: 10 seconds}\n",
        "services.web.stop_grace_period: must be a duration like",
    ),
    (
        "memory",
        "services:\n  web: {image: a, deploy: {resources: {limits: {memory: lots}}}}\n",
        "services.web.deploy.resources.limits.memory: must be a size like",
    ),
    (
        "restart",
        "services:\n  web: {image: a, restart: sometimes}\n",
        "services.web.restart: must be no, always",
    ),
    (
        "missing env_file",
        "services:\n  web: {image: a, env_file: web.env}\n",
        "services.web.env_file: file 'web.env' was not provided with the template",
    ),
    (
        "bad env_file",
        "services:\n  web: {image: a, env_file: [web.env]}\n",
        "services.web.env_file[0]: web.env: line 1",
    ),
    ("bad .env", "services:\n  web: {image: a}\n", ".env: line 2: invalid variable name"),
    (
        "only profiled services",
        "services:\n  web: {image: a, profiles: [debug]}\n",
        "services: every service has profiles: and none of them is chosen; deploy with --profile NAME",
    ),
    (
        "relative bind mount",
        "services:\n  web: {image: a, volumes: ['./conf:/etc/conf']}\n",
        "services.web.volumes[0]: bind mount source './conf' is relative to the template's directory",
    ),
    (
        "home bind mount",
        "services:\n  web: {image: a, volumes: [{type: bind, source: ~/data, target: /data}]}\n",
        "services.web.volumes[0]: bind mount source '~/data' is in a home directory",
    ),
    ("yaml tag", "services:\n  web: {image: !reset a}\n", "the YAML tag !reset is not supported"),
]


FILES = {"bad env_file": {"web.env": "not valid"}, "bad .env": {".env": "A=1\n2=b"}}


@pytest.mark.parametrize(("case", "text", "expected"), CASES, ids=[c[0] for c in CASES])
def test_error_names_field_and_reason(case: str, text: str, expected: str) -> None:
    found = errors(text, env={"N": "x"}, files=FILES.get(case, {}))
    assert any(expected in e for e in found), found


def test_all_errors_are_reported_together() -> None:
    found = errors("""
        services:
          web:
            image: a
            ipc: host
            deploy: {replicas: 2000}
            ports: ['80:80']
          api:
            build: .
            ports: ['80:80']
            depends_on: [ghost]
        """)
    assert len(found) >= 5, found
    for path in (
        "services.web.ipc",
        "services.web.deploy.replicas",
        "services.api.build",
        "services.api.depends_on",
        "services.api.ports[0]",
    ):
        assert any(e.startswith(path + ":") for e in found), (path, found)


def test_schema_errors_stop_before_conversion_but_are_all_listed() -> None:
    found = errors("services:\n  a: {image: 1, restart: [x]}\n  b: {image: b, expose: {a: 1}}\n")
    assert [e.split(":")[0] for e in found] == ["services.a.image", "services.a.restart", "services.b.expose"]


def test_template_size_limit() -> None:
    text = "services:\n  web: {image: a}\n" + "#" * MAX_TEMPLATE_BYTES
    found = errors(text)
    assert found == [f"template: is {len(text)} bytes; the limit is 1 MiB (1048576 bytes)"]


def test_os_environ_is_never_read(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CCS_TEST_TAG", "from-os")
    parsed = parse_template(
        "services:\n  web: {image: 'a:${CCS_TEST_TAG:-default}'}\n", env={}, files={}, app_name="app"
    )
    assert parsed.services["web"].image == "a:default"


def test_an_empty_or_blank_key_is_visible_in_the_field_path() -> None:
    # Found by the property test: the path of an empty top-level key was "" (": unknown key").
    with pytest.raises(TemplateError) as info:
        parse_template("services:\n  web:\n    image: nginx\n? ''\n: null\n", env={}, files={}, app_name="app")
    assert [e.path for e in info.value.errors] == ['[""]']
    with pytest.raises(TemplateError) as info:
        parse_template("services:\n  web:\n    image: nginx\n    'a b': 1\n", env={}, files={}, app_name="app")
    assert [e.path for e in info.value.errors] == ['services.web["a b"]']


def test_an_escape_past_the_last_unicode_code_point_is_invalid_yaml() -> None:
    # Found by the property test: ruamel raised a bare ValueError from chr().
    text = 'services:\n  web:\n    image: "\\U7fffffff"\n'
    with pytest.raises(TemplateError) as info:
        parse_template(text, env={}, files={}, app_name="app")
    assert str(info.value) == "template: invalid YAML: chr() arg not in range(0x110000)"


def test_a_service_that_is_not_a_mapping_is_refused_with_its_name() -> None:
    # Found by the property test: a service the schema skips (bad name) crashed the conversion.
    with pytest.raises(TemplateError) as info:
        parse_template("services:\n  web:\n    image: nginx\n  '': true\n", env={}, files={}, app_name="app")
    assert [str(e).split(":")[0] for e in info.value.errors] == ['services[""]', 'services[""]']
    assert "must be a mapping of service settings" in str(info.value)


def test_a_network_with_a_bad_name_is_refused() -> None:
    # Found by the property test: the official schema leaves networks open, and a network
    # named "" with the value 1 crashed the conversion.
    text = "services:\n  web:\n    image: nginx\nnetworks:\n  ok: null\n  '': 1\n"
    with pytest.raises(TemplateError) as info:
        parse_template(text, env={}, files={}, app_name="app")
    assert [str(e) for e in info.value.errors] == [
        """networks[""]: names may use only letters, digits, '.', '_' and '-' (line 6)""",
    ]
