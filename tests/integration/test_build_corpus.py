"""The 25 awesome-compose files refused for ``build:`` (tests/data/compose-corpus), built with
``ccs app deploy --build`` and deployed.

The corpus holds no build contexts, so the test gives each ``build:`` service a small Dockerfile
``FROM local/busybox:1`` (with the stage its ``target:`` names) in the context directory the file
names; the CLI builds each, pushes it to a real local registry and deploys the pushed digest.
Other mapping, as in the testbed's corpus test (tests/integration/e2e/test_corpus.py): every
other image to ``local/busybox:1``, every command to an idle loop, health checks to ``true``, the
secret files the corpus leaves out (``db/password.txt``) written beside the template; and here the
published ``ports`` are dropped, because all of them run on one host where several ask for the
same port (80, 3000, 8080): placement across hosts is the testbed test's subject, not this one's.

Expected: no file is refused for ``build`` any more. A file whose only refusals were ``build``
(and the missing secret file) deploys and runs (``--wait``); any other is refused with exit 4 and
exactly its remaining errors (relative bind sources), as the testbed test lists them, by the
server's dry run of the template as it will be sent, before anything is built or pushed.

Why one host and not the 3-host testbed: see the README (Build and push): the testbed hosts pull
from its htpasswd registry with credentials that are the i13-registry work's; here the built images
are in the engine the agent runs, so the deploy by digest needs no pull.
"""

from __future__ import annotations

import subprocess
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from ccs.v1 import resources_pb2 as pb
from tests.integration import polling

from .build_world import BuildWorld, build_world  # noqa: F401
from .corpus_build import BUILT, app_of, errors_of, prepare, remaining
from .docker_fixtures import TestImages, docker_client, test_image  # noqa: F401

pytestmark = [pytest.mark.etcd, pytest.mark.docker, pytest.mark.slow, pytest.mark.timeout(900)]
UP = (pb.CONTAINER_STATE_RUNNING, pb.CONTAINER_STATE_HEALTHY)

def test_every_file_refused_for_build_builds_pushes_and_deploys(
    build_world: BuildWorld, tmp_path: Path, test_image: TestImages,  # noqa: F811
) -> None:
    w = build_world
    assert len(BUILT) == 25, BUILT  # as the issue counts them
    paths = {name: prepare(name, tmp_path / "corpus") for name in BUILT}

    def deploy(name: str) -> subprocess.CompletedProcess[str]:
        wait = [] if remaining(name) else ["--wait", "--timeout", "4m"]
        return w.ccs("app", "deploy", "-c", w.cluster, "--name", app_of(name), "-f", str(paths[name]),
                     "--build", "--push-to", w.registry, *wait, timeout=400)

    with ThreadPoolExecutor(max_workers=3) as pool:  # 2 cores: the engine builds a few at a time
        results = dict(zip(BUILT, pool.map(deploy, BUILT), strict=True))
    try:
        deployed = [n for n in BUILT if not remaining(n)]
        failed = {n: results[n].stderr.strip().splitlines()[-1:] for n in deployed if results[n].returncode}
        assert not failed, failed
        assert (len(deployed), len(BUILT) - len(deployed)) == (12, 13), deployed  # as the README says
        for name in set(BUILT) - set(deployed):
            res = results[name]
            assert res.returncode == 4, (name, res.returncode, res.stderr)
            assert errors_of(res.stderr) == sorted(f"services.{k}" for k in remaining(name)), (name, res.stderr)
            assert "building" not in res.stderr, res.stderr  # the server's dry run refused it before any build
        for name in deployed:
            services = w.services(app_of(name))
            built = [s for s in services.values() if s.spec.image.startswith(f"{w.registry}/{app_of(name)}/")]
            assert built and all("@sha256:" in s.spec.image for s in built), (name, services)
            up = {c.service for c in w.containers(app_of(name)) if c.status.state in UP}
            assert up == set(services), (name, up)
    finally:
        with ThreadPoolExecutor(max_workers=4) as pool:
            list(pool.map(lambda n: w.ccs("app", "rm", "-c", w.cluster, app_of(n)), BUILT))
        polling.wait_for("the corpus applications gone", lambda: not any(
            w.containers(app_of(n)) for n in BUILT), timeout=180)
