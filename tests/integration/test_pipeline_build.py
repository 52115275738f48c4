"""``deploy/ci/pipeline.sh``'s test, build and push stages with the real engine and a real registry.

The registry is Debian's ``docker-registry`` (Distribution) on 127.0.0.1 with htpasswd basic
auth, started by the test; the engine trusts loopback registries without TLS. The script logs in
with ``REGISTRY_USER``/``REGISTRY_PASSWORD`` into a ``DOCKER_CONFIG`` of the test's own, so the
host's docker credentials are left alone. Run it under ``flock /run/ccs-docker.lock``.
"""

from __future__ import annotations

import base64
import contextlib
import json
import shutil
import subprocess
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import docker
import pytest

from tests.conftest import free_port, wait_port
from tests.integration.docker_fixtures import TestImages, docker_client, test_image  # noqa: F401
from tests.integration.registry_process import serving, write_config

pytestmark = [pytest.mark.docker, pytest.mark.timeout(180)]

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "deploy" / "ci" / "pipeline.sh"
USER, PASSWORD = "ci", "registry-pw-4711"


@dataclass
class Registry:
    address: str

    def tags(self, repo: str) -> list[str]:
        auth = base64.b64encode(f"{USER}:{PASSWORD}".encode()).decode()
        req = urllib.request.Request(f"http://{self.address}/v2/{repo}/tags/list",
                                     headers={"Authorization": f"Basic {auth}"})
        try:
            with urllib.request.urlopen(req, timeout=10) as r:
                return list(json.loads(r.read()).get("tags") or [])
        except urllib.error.HTTPError as e:
            if e.code == 404:  # no such repository yet
                return []
            raise


@pytest.fixture
def registry(tmp_path: Path) -> Iterator[Registry]:
    if shutil.which("docker-registry") is None or shutil.which("htpasswd") is None:
        pytest.skip("docker-registry and htpasswd (apache2-utils) are not installed")
    port = free_port()
    config = write_config(tmp_path / "registry", f"127.0.0.1:{port}", user=USER, password=PASSWORD)
    with serving(config, tmp_path / "registry.log") as proc:
        wait_port(port, proc=proc)
        yield Registry(f"127.0.0.1:{port}")


@pytest.fixture
def source(tmp_path: Path, test_image: TestImages) -> Path:  # noqa: F811
    """A project: a Dockerfile on local/busybox and a unit test that checks the version file."""
    src = tmp_path / "src"
    src.mkdir()
    (src / "Dockerfile").write_text(f"FROM {test_image.busybox}\nCOPY version /version\n")
    (src / "version").write_text("v2\n")
    test = src / "test.sh"
    test.write_text('#!/bin/sh\n[ "$(cat version)" = "$EXPECT" ] || { echo "version: want $EXPECT"; exit 1; }\n')
    test.chmod(0o755)
    return src


def run(tmp_path: Path, *stages: str, **env: str) -> subprocess.CompletedProcess[str]:
    base = {"PATH": "/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin", "DOCKER_CONFIG": str(tmp_path / "docker"),
            "PIPELINE_STATE": str(tmp_path / "state")}
    return subprocess.run(["bash", str(SCRIPT), *stages], env={**base, **env}, cwd=ROOT, capture_output=True,
                          text=True, timeout=150, check=False)


def test_the_pipeline_tests_builds_and_pushes_with_registry_credentials(
        tmp_path: Path, registry: Registry, source: Path,
        docker_client: docker.DockerClient) -> None:  # noqa: F811
    image = f"{registry.address}/shop/web"
    try:
        done = run(tmp_path, "test", "build", "push", SOURCE_DIR=str(source), EXPECT="v2", IMAGE=image,
                   VERSION="v2", REGISTRY_USER=USER, REGISTRY_PASSWORD=PASSWORD)
        assert done.returncode == 0, done.stdout + done.stderr
        assert registry.tags("shop/web") == ["v2"]
        assert PASSWORD not in done.stdout + done.stderr
        assert PASSWORD not in (tmp_path / "docker" / "config.json").read_text()  # kept as base64 auth, not logged

        # A failing unit test stops it: nothing is built, nothing pushed.
        failed = run(tmp_path, "test", "build", "push", SOURCE_DIR=str(source), EXPECT="v3", IMAGE=image,
                     VERSION="v3", REGISTRY_USER=USER, REGISTRY_PASSWORD=PASSWORD)
        assert failed.returncode == 1 and "unit tests failed: nothing was built or deployed" in failed.stderr
        assert registry.tags("shop/web") == ["v2"]
        with pytest.raises(docker.errors.ImageNotFound):
            docker_client.images.get(f"{image}:v3")
    finally:
        for tag in ("v2", "v3"):
            with contextlib.suppress(docker.errors.ImageNotFound):
                docker_client.images.remove(f"{image}:{tag}")
