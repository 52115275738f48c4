"""The awesome-compose corpus (tests/data/compose-corpus, with its licence) on the 3-host testbed.

Every file is deployed through the real CLI. A file ccs refuses is listed in ``REFUSED`` with the
field and the documented reason of each refusal, and must be refused with exit 4 and exactly those
errors. A file that parses runs, after the test's mapping for what this machine cannot have:

- ``IMAGES``: every image to a local one (no registry can be reached here), and every command to
  an idle loop, so that the containers stay up; nothing else of the template is changed (ports,
  volumes, environment, networks, capabilities, sysctls, restart policies stay as written);
- a bind-mount source that does not exist on this machine, under the test's own directory
  (``BIND_SOURCES``, and ``ENV`` for one given through the ``.env``), so the engine does not
  create directories in the machine's /usr or /media;
- ``POLICY``: the privileged keys a file uses are first refused (exit 6, naming the policy), then
  allowed for its deploy (``ccs cluster update --allow``) and denied again afterwards.

All of them are deployed at once (``--wait``), then each service's container is read with
``docker inspect`` on the host it landed on and compared field by field with what its parsed
ServiceSpec asks (tests/integration/e2e/inspect_expect.py: built from the spec, not per file).
One container is then killed, and ccs (not the engine, whose restart policy is ``no``) replaces it.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TypeVar

import pytest
import yaml

from ccs.v1 import resources_pb2 as pb
from controlplane.compose import RULES, ParsedTemplate, TemplateError, parse_template
from controlplane.compose.template import BUILD_REFUSAL
from controlplane.planner import resolve_policy

from .conftest import REPO, Cluster3
from .inspect_expect import Where, expected, mismatches

pytestmark = [pytest.mark.slow, pytest.mark.docker, pytest.mark.timeout(600)]
T = TypeVar("T")

CORPUS = REPO / "tests" / "data" / "compose-corpus" / "awesome-compose"
RESOLVER = "169.254.20.53"  # the agents' default --resolver-address
IDLE = ["sh", "-c", "trap 'exit 0' TERM; while true; do sleep 1; done"]
EXIT_INVALID, EXIT_DENIED = 4, 6

#: The corpus's images -> local ones (services with a web server get the web app image).
IMAGES = {
    "gitea/gitea:latest": "local/webapp:v1",
    "postgres:alpine": "local/busybox:1",
    "postgres:latest": "local/busybox:1",
    "nextcloud:apache": "local/webapp:v1",
    "redis:alpine": "local/busybox:1",
    "mariadb:10.5": "local/busybox:1",
    "mariadb:10.6.4-focal": "local/busybox:1",
    "wordpress:latest": "local/webapp:v1",
    "linuxserver/plex": "local/netcheck:1",
    "linuxserver/wireguard": "local/netcheck:1",
    "portainer/portainer-ce:alpine": "local/webapp:v1",
    "dpage/pgadmin4:latest": "local/webapp:v1",
}
#: Bind sources missing on this machine -> a directory of the test (the rest stay as written).
BIND_SOURCES = {"/usr/share/appdata/wireguard/config": "wireguard-config"}
ENV = {"plex": {"PLEX_MEDIA_PATH": "plex-media"}}  # relative: under the test's bind directory
POLICY = {"plex": "network_mode", "wireguard": "cap_add"}

BUILD, RELATIVE, HOME = "build", "relative", "home"
SECRET_FILE, RUNTIME, FIXED_ADDRESS, IPAM = "secret file", "runtime", "ipv4_address", "ipam"
REASONS = {
    BUILD: BUILD_REFUSAL,
    RELATIVE: "is relative to the template's directory, which does not travel to the nodes",
    HOME: "is in a home directory, which depends on the user of the machine running it",
    SECRET_FILE: "file 'db/password.txt' was not provided with the template",
    RUNTIME: "is not supported: " + RULES["services.*.runtime"].reason,
    FIXED_ADDRESS: "is not supported: " + RULES["services.*.networks.*.ipv4_address"].reason,
    IPAM: "is not supported: " + RULES["networks.*.ipam"].reason,
}
#: Refused files: field -> reason. The CLI must print exactly these errors.
REFUSED: dict[str, dict[str, str]] = {
    "angular": {"web.volumes[0]": RELATIVE, "web.build": BUILD},
    "apache-php": {"web.volumes[0]": RELATIVE, "web.build": BUILD},
    "aspnet-mssql": {"web.build": BUILD},
    "django": {"web.build": BUILD},
    "elasticsearch-logstash-kibana": {"logstash.volumes[0]": RELATIVE, "logstash.volumes[1]": RELATIVE},
    "fastapi": {"api.build": BUILD},
    "flask": {"web.build": BUILD},
    "flask-redis": {"web.volumes[0]": RELATIVE, "web.build": BUILD},
    "minecraft": {"minecraft.volumes[0]": HOME},
    "nginx-aspnet-mysql": {"@secrets.db-password.file": SECRET_FILE, "backend.build": BUILD,
                           "proxy.build": BUILD},
    "nginx-flask-mongo": {"web.volumes[0]": RELATIVE, "backend.volumes[0]": RELATIVE, "backend.build": BUILD},
    "nginx-flask-mysql": {"@secrets.db-password.file": SECRET_FILE, "backend.build": BUILD,
                          "proxy.build": BUILD},
    "nginx-golang": {"proxy.volumes[0]": RELATIVE, "backend.build": BUILD},
    "nginx-golang-mysql": {"@secrets.db-password.file": SECRET_FILE, "backend.build": BUILD,
                           "proxy.volumes[0]": RELATIVE},
    "nginx-golang-postgres": {"@secrets.db-password.file": SECRET_FILE, "backend.build": BUILD,
                              "proxy.volumes[0]": RELATIVE},
    "nginx-nodejs-redis": {"web1.build": BUILD, "web2.build": BUILD, "nginx.build": BUILD},
    "nginx-wsgi-flask": {"nginx-proxy.volumes[0]": RELATIVE, "nginx-proxy.build": BUILD, "flask-app.build": BUILD},
    "pihole-cloudflared-DoH": {"cloudflared.networks.dns-net.ipv4_address": FIXED_ADDRESS,
                               "@networks.dns-net.ipam": IPAM},
    "prometheus-grafana": {"prometheus.volumes[0]": RELATIVE, "grafana.volumes[0]": RELATIVE},
    "react-express-mongodb": {"frontend.volumes[0]": RELATIVE, "frontend.build": BUILD,
                              "backend.volumes[0]": RELATIVE, "backend.build": BUILD},
    "react-express-mysql": {"@secrets.db-password.file": SECRET_FILE, "backend.volumes[0]": RELATIVE,
                            "backend.volumes[1]": RELATIVE, "backend.volumes[2]": RELATIVE, "backend.build": BUILD,
                            "frontend.volumes[0]": RELATIVE, "frontend.build": BUILD},
    "react-java-mysql": {"@secrets.db-password.file": SECRET_FILE, "backend.build": BUILD,
                         "frontend.volumes[0]": RELATIVE, "frontend.build": BUILD},
    "react-nginx": {"frontend.build": BUILD},
    "react-rust-postgres": {"frontend.volumes[0]": RELATIVE, "frontend.build": BUILD,
                            "backend.volumes[0]": RELATIVE, "backend.build": BUILD},
    "sparkjava": {"sparkjava.build": BUILD},
    "sparkjava-mysql": {"@secrets.db-password.file": SECRET_FILE, "backend.build": BUILD},
    "spring-postgres": {"@secrets.db-password.file": SECRET_FILE, "backend.build": BUILD},
    "traefik-golang": {"backend.build": BUILD},
    "vuejs": {"web.volumes[0]": RELATIVE, "web.build": BUILD},
    "wasmedge-kafka-mysql": {"etl.runtime": RUNTIME, "redpanda.volumes[0]": RELATIVE},
    "wasmedge-mysql-nginx": {"backend.runtime": RUNTIME, "frontend.volumes[0]": RELATIVE},
}


#: Where one error of the CLI's line starts: "services.web.build: ..." or "networks.x.ipam: ...".
ERROR_START = re.compile(r"(?:error: |; )((?:services|networks|secrets)\.[\w.\[\]-]+): ")


def _field(key: str) -> str:
    return key[1:] if key.startswith("@") else f"services.{key}"


def corpus() -> dict[str, Path]:
    return {d.name: d for d in sorted(CORPUS.iterdir()) if d.is_dir()}


def template_of(directory: Path) -> Path:
    return next(p for p in directory.iterdir() if p.name in ("compose.yaml", "compose.yml"))


def app_of(name: str) -> str:
    return "cp-" + name.lower()


def parallel(fn: Callable[[str], T], names: list[str], workers: int = 4) -> dict[str, T]:
    """``fn`` over ``names``, a few at a time (the machine has 2 cores; most time is spent waiting)."""
    with ThreadPoolExecutor(max_workers=workers) as pool:
        return dict(zip(names, pool.map(fn, names), strict=True))


def parses(directory: Path) -> bool:
    env = directory / ".env"
    try:
        parse_template(template_of(directory).read_text(), env={},
                       files={".env": env.read_text()} if env.exists() else {}, app_name=app_of(directory.name))
    except TemplateError:
        return False
    return True


def test_every_refused_file_is_refused_by_the_cli_with_each_field_and_reason(cluster3: Cluster3) -> None:
    c = cluster3
    dirs = corpus()

    def deploy(name: str) -> subprocess.CompletedProcess[str]:
        return c.ccs("app", "deploy", "-c", c.name, "--name", app_of(name), "-f", str(template_of(dirs[name])),
                     check=False)

    for name, res in parallel(deploy, sorted(REFUSED)).items():
        assert res.returncode == EXIT_INVALID, (name, res.returncode, res.stderr)
        [line] = res.stderr.strip().splitlines()
        starts = list(ERROR_START.finditer(line))
        errors = {m.group(1): line[m.end():starts[i + 1].start() if i + 1 < len(starts) else len(line)]
                  for i, m in enumerate(starts)}
        assert sorted(errors) == sorted(_field(k) for k in REFUSED[name]), (name, line)
        for key, reason in REFUSED[name].items():
            assert REASONS[reason] in errors[_field(key)], (name, key, errors[_field(key)])
    left = {a.meta.name for a in c.api(lambda cl: cl.applications.list(c.name))}
    assert not {app_of(n) for n in REFUSED} & left, "a refused template left an application behind"


# ------------------------------------------------------------------ files that parse

def localize(text: str, binds: Path) -> str:
    """The test's mapping: local images, an idle command, bind sources that exist here."""
    doc = yaml.safe_load(text)
    for svc in doc["services"].values():
        svc["image"] = IMAGES[svc["image"]]
        svc["command"] = list(IDLE)
        assert "entrypoint" not in svc, "a corpus entrypoint would need mapping too"
        test = (svc.get("healthcheck") or {}).get("test")
        if test and test not in ("NONE", ["NONE"]):  # keep its timings; a check busybox passes
            svc["healthcheck"]["test"] = ["CMD", "true"]
        volumes = svc.get("volumes") or []
        for i, v in enumerate(volumes):
            source = v.split(":", 1)[0] if isinstance(v, str) else v.get("source", "")
            if source in BIND_SOURCES:
                target = str(binds / BIND_SOURCES[source])
                volumes[i] = v.replace(source, target, 1) if isinstance(v, str) else {**v, "source": target}
    return str(yaml.safe_dump(doc, sort_keys=False, width=1000))


@pytest.fixture
def workdir(cluster3: Cluster3) -> Iterator[Path]:
    d = cluster3.workdir / "corpus"
    d.mkdir(exist_ok=True)
    yield d
    shutil.rmtree(d, ignore_errors=True)


def prepare(name: str, workdir: Path) -> tuple[Path, dict[str, str], ParsedTemplate]:
    """The localized file (with its .env) in the test's directory, the deploy-time env, and the
    template as the server will parse it."""
    source = corpus()[name]
    target = workdir / name
    target.mkdir()
    text = localize(template_of(source).read_text(), workdir / "binds")
    (target / "compose.yaml").write_text(text)
    files = {}
    if (source / ".env").exists():
        shutil.copy(source / ".env", target / ".env")
        files[".env"] = (source / ".env").read_text()
    env = {k: str(workdir / "binds" / v) for k, v in ENV.get(name, {}).items()}
    return target / "compose.yaml", env, parse_template(text, env=env, files=files, app_name=app_of(name))


def deploy_args(c: Cluster3, name: str, path: Path, env: dict[str, str]) -> list[str]:
    return ["app", "deploy", "-c", c.name, "--name", app_of(name), "-f", str(path),
            *[f"--env={k}={v}" for k, v in env.items()]]


def inspect_all(c: Cluster3, name: str, parsed: ParsedTemplate) -> list[str]:
    """Every service's containers, read on their hosts and compared with their specs."""
    app = app_of(name)
    problems = []
    for service, spec in parsed.services.items():
        live = c.live(app, service)
        if len(live) != spec.replicas:
            problems.append(f"{app}/{service}: {len(live)} running of {spec.replicas}")
        for x in live:
            [inspected] = [d for d in c.docker_containers(x.node, app, service) if d["Id"] == x.status.docker_id]
            where = Where(c.name, app, service, RESOLVER)
            problems += [f"{app}/{service} on {x.node}: {m}" for m in mismatches(inspected, expected(spec, where))]
    return problems


def test_every_file_that_parses_runs_as_its_template_says(cluster3: Cluster3, workdir: Path) -> None:
    c = cluster3
    names = sorted(set(corpus()) - set(REFUSED))
    prepared = {name: prepare(name, workdir) for name in names}
    assert {n: sorted({u.policy for u in p[2].privileged}) for n, p in prepared.items() if p[2].privileged} == {
        n: [policy] for n, policy in POLICY.items()}
    try:
        for name, policy in POLICY.items():  # refused first: the policy is what admits them
            path, env, _ = prepared[name]
            res = c.ccs(*deploy_args(c, name, path, env), check=False)
            assert res.returncode == EXIT_DENIED, (name, res.returncode, res.stderr)
            assert f"allow with `ccs cluster update {c.name} --allow {policy}`" in res.stderr, res.stderr
        c.ccs("cluster", "update", c.name, "--allow", ",".join(sorted(POLICY.values())))

        def deploy(name: str) -> subprocess.CompletedProcess[str]:
            path, env, _ = prepared[name]
            return c.ccs(*deploy_args(c, name, path, env), "--wait", "--timeout", "3m", check=False, timeout=240)

        results = parallel(deploy, names, workers=len(names))
        c.ccs("cluster", "update", c.name, "--deny", ",".join(sorted(POLICY.values())))
        failed = {n: (r.returncode, r.stderr.strip().splitlines()[-1:]) for n, r in results.items() if r.returncode}
        assert not failed, failed

        problems = [p for found in parallel(lambda n: inspect_all(c, n, prepared[n][2]), names).values()
                    for p in found]
        assert not problems, "\n".join(problems)
        check_ccs_restarts_a_killed_container(c, names, prepared)
    finally:
        c.ccs("cluster", "update", c.name, "--deny", ",".join(sorted(POLICY.values())), check=False)
        parallel(lambda n: c.ccs("app", "rm", "-c", c.name, app_of(n), check=False), names)
        c.wait_for("the corpus applications gone", lambda: not any(
            c.containers(app_of(n)) for n in names), timeout=120, interval=2)


def check_ccs_restarts_a_killed_container(
    c: Cluster3, names: list[str], prepared: dict[str, tuple[Path, dict[str, str], ParsedTemplate]]
) -> None:
    """The first service that restarts always: its container killed in the engine comes back as
    a new container that ccs made (the engine's own restart policy is ``no``)."""
    app, service = next((app_of(n), s) for n in names for s, spec in prepared[n][2].services.items()
                        if resolve_policy(s, spec).condition == "any")
    [victim] = c.live(app, service)
    c.host(int(victim.node.removeprefix("host"))).docker("kill", victim.status.docker_id)

    def replaced() -> pb.Container | None:
        live = c.live(app, service)
        return live[0] if len(live) == 1 and live[0].meta.id != victim.meta.id else None

    new = c.wait_for(f"{app}/{service} replaced by ccs", replaced, timeout=60)
    assert new is not None and new.meta.labels.get("ccs.restart.count") == "1"
    docker = c.docker_containers(new.node, app, service)
    assert [d["Id"] for d in docker] == [new.status.docker_id]
