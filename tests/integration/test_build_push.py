"""``ccs app deploy|apply --build`` end to end: the local engine builds (context, dockerfile, args,
target, labels), the CLI pushes to a real registry (Debian ``docker-registry``) and deploys the
pushed ``repo:tag@digest``, which a real agent runs. Then ``apply --build`` of the same tree is
"unchanged" (same content, same tag, same digest: no release) and of a changed tree "updated".
"""

from __future__ import annotations

from pathlib import Path

import docker
import pytest

from ccs.v1 import resources_pb2 as pb
from tests.integration import polling

from .build_world import BuildWorld, build_world  # noqa: F401
from .docker_fixtures import TestImages, docker_client, test_image  # noqa: F401
from .local_registry import manifest_digest

pytestmark = [pytest.mark.etcd, pytest.mark.docker, pytest.mark.slow, pytest.mark.timeout(600)]

DOCKERFILE = """\
FROM local/busybox:1 AS base
ARG GREETING=none
RUN echo "$GREETING" > /greeting
FROM base AS final
LABEL stage=final
"""
TEMPLATE = """\
# built by the CLI
services:
  web:
    build:
      context: src
      dockerfile: web.Dockerfile
      target: final
      args: {GREETING: hello}
      labels: {team: shop}
    command: ["sh", "-c", "trap 'exit 0' TERM; while true; do sleep 1; done"]
"""


def project(tmp_path: Path) -> Path:
    root = tmp_path / "shop"
    (root / "src").mkdir(parents=True)
    (root / "src" / "web.Dockerfile").write_text(DOCKERFILE)
    (root / "compose.yaml").write_text(TEMPLATE)
    return root / "compose.yaml"


def test_build_push_and_deploy_by_digest_then_apply_is_unchanged_until_the_source_changes(
    build_world: BuildWorld, tmp_path: Path, test_image: TestImages,  # noqa: F811
    docker_client: docker.DockerClient,  # noqa: F811
) -> None:
    w = build_world
    compose = project(tmp_path)
    res = w.ccs("app", "deploy", "-c", w.cluster, "-f", str(compose), "--build", "--push-to", w.registry,
                "--wait", "--timeout", "2m")
    assert res.returncode == 0, res.stderr
    assert "web: Step 1/6 : FROM local/busybox:1 AS base" in res.stderr  # each build step
    assert "web: Step 6/6 : LABEL team=shop" in res.stderr
    assert ": Pushed" in res.stderr and "web: layer " in res.stderr  # each pushed layer

    image = w.services("shop")["web"].spec.image
    repo_tag, _, digest = image.partition("@")
    version = repo_tag.rpartition(":")[2]
    assert repo_tag == f"{w.registry}/shop/web:{version}" and len(version) == 12  # a content hash: no git here
    assert digest == manifest_digest(w.registry, "shop/web", version)  # deployed by the pushed digest

    [running] = polling.wait_for("web running", lambda: [
        c for c in w.containers("shop") if c.status.state == pb.CONTAINER_STATE_RUNNING])
    inspected = docker_client.api.inspect_container(running.status.docker_id)
    labels = docker_client.api.inspect_image(inspected["Image"])["Config"]["Labels"]
    assert labels["team"] == "shop" and labels["stage"] == "final"  # build.labels and build.target
    out = docker_client.api.exec_start(docker_client.api.exec_create(running.status.docker_id, ["cat", "/greeting"]))
    assert out.decode().strip() == "hello"  # build.args

    again = w.ccs("app", "apply", "-c", w.cluster, "-f", str(compose), "--build", "--push-to", w.registry)
    assert again.returncode == 0, again.stderr
    assert again.stdout.rstrip().endswith("application shop: unchanged"), (again.stdout, again.stderr)

    (compose.parent / "src" / "web.Dockerfile").write_text(DOCKERFILE + "LABEL release=2\n")
    changed = w.ccs("app", "apply", "-c", w.cluster, "-f", str(compose), "--build", "--push-to", w.registry,
                    "--wait", "--timeout", "2m")
    assert changed.returncode == 0, changed.stderr
    assert changed.stdout.rstrip().endswith("application shop: updated"), changed.stdout
    new_image = w.services("shop")["web"].spec.image
    assert new_image != image and new_image.startswith(f"{w.registry}/shop/web:")
    w.ccs("app", "rm", "-c", w.cluster, "shop")


def test_a_failed_build_exits_13_naming_the_service_and_deploys_nothing(
    build_world: BuildWorld, tmp_path: Path, test_image: TestImages,  # noqa: F811
) -> None:
    w = build_world
    compose = project(tmp_path)
    (compose.parent / "src" / "web.Dockerfile").write_text("FROM local/busybox:1 AS final\nRUN false\n")
    res = w.ccs("app", "deploy", "-c", w.cluster, "-f", str(compose), "--build", "--push-to", w.registry)
    assert res.returncode == 13, res.stderr
    [line] = [x for x in res.stderr.splitlines() if x.startswith("error: ")]
    assert line.startswith("error: services.web.build: build failed: "), line
    assert w.ccs("app", "get", "-c", w.cluster, "shop").returncode == 3
