"""Issue 13's end-to-end delivery: ``deploy/ci/pipeline.sh`` (the script the shipped Jenkinsfile and
GitHub Actions workflow call) against the real Debian ``docker-registry`` over TLS with htpasswd
auth, and the 3-host testbed.

The source folder holds a Dockerfile (on ``local/webapp:v1``, its page set to its version; nothing
can be pulled from a public registry here) and a unit test (``test.sh``). The CI runner is host1's
engine (``DOCKER_HOST``) with a ``DOCKER_CONFIG`` of the test's own, as a runner with its own
engine; the registry's CA is trusted by every testbed engine (tests/integration/e2e/tls_registry.py)
and given to the control plane with the cluster's login (digest pinning), which the nodes pull with.

- A failing unit test stops the pipeline non-zero: nothing is pushed, no release, v1 still served.
- A passing one builds, pushes, fires the application's ``update-image`` trigger and waits for the
  release: it ends with v2 serving 100% through the routers, while a load generator sent requests
  through all three routers from before the pipeline started, with 0 failed requests.
"""

from __future__ import annotations

import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from ccs.v1 import resources_pb2 as pb

from .conftest import BRIDGE_IP, REPO, Cluster3
from .helpers import HEALTH_TEST
from .load import Answer, Load
from .tls_registry import TlsRegistry, tls_registry

pytestmark = [pytest.mark.slow, pytest.mark.docker, pytest.mark.timeout(900)]

SCRIPT = REPO / "deploy" / "ci" / "pipeline.sh"
ROUTERS = [f"10.77.0.1{i}:9080" for i in (1, 2, 3)]
PASSING_TEST = """#!/bin/sh
# The project's unit test: the image must say which version it is.
grep -q '^ENV VERSION=v[0-9]' Dockerfile && echo "1 test passed"
"""
FAILING_TEST = """#!/bin/sh
echo "test_version ... FAILED"
exit 1
"""


def template(image: str, domain: str) -> str:
    return f"""
services:
  web:
    image: {image}
    healthcheck:
      test: {HEALTH_TEST}
      interval: 1s
      timeout: 1s
      retries: 2
    labels:
      aliyun.routing.port_8080: {domain}
    deploy:
      replicas: 3
      update_config:
        parallelism: 1
        order: start-first
        monitor: 2s
        failure_action: rollback
"""


@pytest.fixture(scope="module")
def registry(cluster3: Cluster3, tmp_path_factory: pytest.TempPathFactory) -> Iterator[TlsRegistry]:
    with tls_registry(tmp_path_factory.mktemp("tls-registry"), BRIDGE_IP) as reg:
        cluster3.api(lambda cl: cl.registries.login(cluster3.name, reg.addr, reg.user, reg.password,
                                                    ca_pem=reg.ca_pem))
        try:
            yield reg
        finally:
            cluster3.api(lambda cl: cl.registries.delete(cluster3.name, reg.addr))


class Project:
    """A source folder and the pipeline's environment for one application."""

    def __init__(self, c: Cluster3, reg: TlsRegistry, app: str, base: Path) -> None:
        self.c, self.reg, self.app, self.base = c, reg, app, base
        self.source = base / "src"
        self.source.mkdir(parents=True)
        (base / "docker-config").mkdir()
        (base / "ccs-ca.crt").write_text(c.server.ca_pem or "")
        self.env = {
            "PATH": "/usr/local/bin:/usr/bin:/bin", "HOME": str(base),
            "DOCKER_HOST": c.host(1).docker_host, "DOCKER_CONFIG": str(base / "docker-config"),
            "SOURCE_DIR": str(self.source), "IMAGE": f"{reg.addr}/{app}/web",
            "REGISTRY_USER": reg.user, "REGISTRY_PASSWORD": reg.password,
            "CCS_CA_FILE": str(base / "ccs-ca.crt"), "POLL": "0.5", "WAIT_TIMEOUT": "300",
        }

    def write(self, version: str, test: str) -> None:
        # local/webapp's httpd answers / with /www/index.html
        (self.source / "Dockerfile").write_text(
            f"FROM local/webapp:v1\nENV VERSION={version}\nRUN echo {version} > /www/index.html\n")
        (self.source / "test.sh").write_text(test)
        (self.source / "test.sh").chmod(0o755)

    def run(self, version: str, *stages: str, **more: str) -> subprocess.CompletedProcess[str]:
        state = self.base / f"state-{version}"
        return subprocess.run(["bash", str(SCRIPT), *stages], env={**self.env, "VERSION": version,
                                                                   "PIPELINE_STATE": str(state), **more},
                              cwd=self.source, capture_output=True, text=True, timeout=600, check=False)


def ship_v1(c: Cluster3, reg: TlsRegistry, app: str, tmp_path: Path) -> tuple[Project, str]:
    """v1 built and pushed by the pipeline's own stages, deployed, served by every router; the
    application's update-image trigger made. Returns the project and the route's domain."""
    p = Project(c, reg, app, tmp_path)
    p.write("v1", PASSING_TEST)
    first = p.run("v1", "test", "build", "push")
    assert first.returncode == 0, first.stderr
    domain = f"{app}.pipeline.test"
    path = c.compose_file(app, template(f"{reg.addr}/{app}/web:v1", domain))
    c.ccs("app", "deploy", "-c", c.name, "--name", app, "-f", str(path), "--wait", "--timeout", "3m", timeout=240)

    def routed() -> bool:
        with Load(ROUTERS, domain, threads=3, max_seconds=3) as load:
            answers = load.window(1.0)
        return bool(answers) and all(a.status == 200 and a.body == "v1" for a in answers)

    c.wait_for(f"every router to serve {domain}", routed, timeout=90)
    made = c.api(lambda cl: cl.triggers.create(c.name, app, "ci", "update-image", service="web"))
    p.env |= {"CCS_TRIGGER_URL": made.trigger.url, "CCS_TRIGGER_SECRET": made.secret}
    return p, domain


def brief(answers: list[Answer]) -> str:
    return "; ".join(f"{a.status} {a.body[:60]}" for a in answers[:5])


def images_running(c: Cluster3, app: str) -> set[str]:
    return {x.spec.image for x in c.live(app, "web")}


def test_a_failing_unit_test_stops_the_pipeline_with_nothing_deployed(
        cluster3: Cluster3, registry: TlsRegistry, app_name: str, tmp_path: Path) -> None:
    c, app = cluster3, app_name
    p, _ = ship_v1(c, registry, app, tmp_path)
    before = c.api(lambda cl: cl.applications.get(c.name, app)).application.revision
    p.write("v2", FAILING_TEST)
    done = p.run("v2", "all")
    assert done.returncode == 1, (done.stdout, done.stderr)
    assert "test_version ... FAILED" in done.stdout + done.stderr
    assert "unit tests failed: nothing was built or deployed" in done.stderr
    assert registry.tags(f"{app}/web") == ["v1"]  # nothing pushed
    got = c.api(lambda cl: cl.applications.get(c.name, app))
    assert got.application.revision == before
    assert not c.api(lambda cl: cl.releases.list(c.name, app))
    assert {i.partition("@")[0] for i in images_running(c, app)} == {f"{registry.addr}/{app}/web:v1"}


def test_a_passing_pipeline_ends_with_the_new_version_serving_all_traffic_under_load(
        cluster3: Cluster3, registry: TlsRegistry, app_name: str, tmp_path: Path) -> None:
    c, app = cluster3, app_name
    p, domain = ship_v1(c, registry, app, tmp_path)
    p.write("v2", PASSING_TEST)
    with Load(ROUTERS, domain, max_seconds=600) as load:
        time.sleep(1)
        done = p.run("v2", "all")
        after = load.answered_window(2)
    assert done.returncode == 0, (done.stdout[-2000:], done.stderr[-4000:])
    assert "1 test passed" in done.stdout + done.stderr
    assert "succeeded" in done.stderr
    assert not load.failures(), f"{len(load.failures())} failed of {len(load.answers)}: {brief(load.failures())}"
    assert len(load.answers) > 100, len(load.answers)  # the load really ran through the release
    assert {a.body for a in load.answers if a.status == 200} == {"v1", "v2"}, (
        done.stderr[-3000:], c.api(lambda cl: cl.releases.list(c.name, app)), images_running(c, app))
    assert load.shares(after) == {"v2": 1.0}
    assert sorted(registry.tags(f"{app}/web")) == ["v1", "v2"]
    rels = c.api(lambda cl: cl.releases.list(c.name, app))
    assert [r.status.phase for r in rels] == [pb.RELEASE_PHASE_SUCCEEDED]
    running = images_running(c, app)
    assert len(running) == 1 and len(c.live(app, "web")) == 3
    [image] = running
    assert image.startswith(f"{registry.addr}/{app}/web:v2@sha256:")  # pinned to the pushed digest
    assert registry.password not in done.stdout + done.stderr
