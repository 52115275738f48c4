"""``ccs app deploy --build`` on the 3-host testbed: the corpus files refused for ``build:`` that
have no other refusal, built by the CLI, pushed to the testbed's registry (Debian
``docker-registry`` with htpasswd auth) and deployed across the three hosts, which pull the pushed
``repo:tag@digest`` with their own logins.

The CLI builds with host1's engine (``DOCKER_HOST`` and ``DOCKER_CONFIG`` of host1, as a CI runner
with its own engine and ``docker login``): the root engine of this machine may only push to the
registry's loopback front end (127.77.0.1:5000), an address the hosts cannot pull from, while
host1's engine reaches 10.77.0.1:5000, the address every host pulls from. The mapping of the files
is tests/integration/corpus_build.py's; the refusals and the one-host run are
tests/integration/test_build_corpus.py's.
"""

from __future__ import annotations

import json
import subprocess
from concurrent.futures import ThreadPoolExecutor
from functools import partial

import pytest

from ccs.client import AsyncClient
from ccs.v1 import resources_pb2 as pb

from ..corpus_build import BUILT, app_of, prepare, remaining
from .conftest import BRIDGE_IP, CCS, Cluster3

pytestmark = [pytest.mark.slow, pytest.mark.docker, pytest.mark.timeout(900)]

REGISTRY = f"{BRIDGE_IP}:5000"


def test_built_corpus_files_run_on_every_host_by_the_pushed_digest(cluster3: Cluster3) -> None:
    c = cluster3
    names = [n for n in BUILT if not remaining(n)]
    workdir = c.workdir / "build-corpus"
    paths = {n: prepare(n, workdir) for n in names}
    host1 = c.host(1)
    env = {"PATH": "/usr/bin:/bin", "HOME": str(c.workdir), "CCS_CONFIG": str(c.config_path),
           "DOCKER_HOST": host1.docker_host, "DOCKER_CONFIG": host1.docker_config}

    def deploy(name: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([CCS, "app", "deploy", "-c", c.name, "--name", app_of(name), "-f", str(paths[name]),
                               "--build", "--push-to", REGISTRY, "--wait", "--timeout", "4m"],
                              capture_output=True, text=True, env=env, cwd=c.workdir, timeout=400, check=False)

    try:
        with ThreadPoolExecutor(max_workers=3) as pool:
            results = dict(zip(names, pool.map(deploy, names), strict=True))
        failed = {n: (r.returncode, r.stderr.strip().splitlines()[-3:]) for n, r in results.items() if r.returncode}
        assert not failed, failed
        hosts: set[str] = set()
        for name in names:
            app = app_of(name)
            specs = {s.meta.name: s.spec for s in c.api(partial(_services, cluster=c.name, app=app))}
            for service, spec in specs.items():
                if not spec.image.startswith(f"{REGISTRY}/{app}/"):
                    continue
                digest = spec.image.partition("@")[2]
                assert digest.startswith("sha256:"), spec.image
                for x in c.live(app, service):
                    [inspected] = [d for d in c.docker_containers(x.node, app, service) if d["Id"] == x.status.docker_id]
                    image = c.host(int(x.node.removeprefix("host"))).docker(
                        "image", "inspect", inspected["Image"], "--format", "{{json .RepoDigests}}").stdout
                    assert f"{REGISTRY}/{app}/{service}@{digest}" in json.loads(image), (app, service, x.node)
                    hosts.add(x.node)
        assert hosts == {"host1", "host2", "host3"}, hosts  # pulled by digest where it was not built
    finally:
        with ThreadPoolExecutor(max_workers=4) as pool:
            list(pool.map(lambda n: c.ccs("app", "rm", "-c", c.name, app_of(n), check=False), names))
        c.wait_for("the built corpus applications gone", lambda: not any(
            c.containers(app_of(n)) for n in names), timeout=180, interval=2)


async def _services(cl: AsyncClient, *, cluster: str, app: str) -> list[pb.Service]:
    return list(await cl.services.list(cluster, app))
