"""Docker fixtures for integration tests (imported by tests/integration/conftest.py).

`docker_client` talks to the daemon named by DOCKER_HOST (default: the local socket);
`test_image` builds the local test images once per session with deploy/images/build.sh
(a no-op when they are current) and names them.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import docker
import pytest

from nodeagent.runtime import naming

from .fabric_cleanup import clear_fabric

CLUSTER_LABEL = naming.CLUSTER
BUILD_SCRIPT = Path(__file__).resolve().parents[2] / "deploy" / "images" / "build.sh"


@dataclass(frozen=True)
class TestImages:
    """The local images tests may use; none needs a registry."""

    __test__ = False  # not a test class, despite the name

    busybox: str = "local/busybox:1"
    webapp_v1: str = "local/webapp:v1"  # GET / -> "v1", GET /health -> 200, port 8080
    webapp_v2: str = "local/webapp:v2"  # GET / -> "v2", GET /health -> 200, port 8080
    webapp_bad: str = "local/webapp:bad"  # GET / -> "bad", GET /health -> 500, port 8080
    missing: str = "local/nope:1"  # never built: for image-not-found paths


@pytest.fixture(scope="session")
def docker_client() -> Iterator[docker.DockerClient]:
    """A docker SDK client for the test daemon; fails clearly when there is none."""
    try:
        client = docker.from_env()
        client.ping()
    except docker.errors.DockerException as exc:
        pytest.fail(f"no Docker Engine at {os.environ.get('DOCKER_HOST', 'the default socket')}: {exc}")
    yield client
    client.close()


@pytest.fixture(scope="session")
def test_image(docker_client: docker.DockerClient) -> TestImages:
    """Build (or confirm) the local test images once per session."""
    result = subprocess.run(["bash", str(BUILD_SCRIPT)], capture_output=True, text=True, check=False)
    if result.returncode != 0:
        pytest.fail(f"{BUILD_SCRIPT} failed ({result.returncode}):\n{result.stdout}{result.stderr}")
    return TestImages()


def remove_cluster_objects(client: docker.DockerClient, cluster: str) -> None:
    """Remove every container, network and volume labelled ``ccs.cluster=<cluster>``: what one test
    cluster made, and nothing of the other sessions sharing the daemon. A network something else
    still holds is left (the engine refuses), not an error: this runs in clean-ups."""
    selector = {"label": [f"{CLUSTER_LABEL}={cluster}"]}
    for c in client.api.containers(all=True, filters=selector):
        with contextlib.suppress(docker.errors.APIError):
            client.api.remove_container(c["Id"], force=True, v=True)
    for n in client.api.networks(filters=selector):
        with contextlib.suppress(docker.errors.APIError):
            client.api.remove_network(n["Id"])
    for v in client.api.volumes(filters=selector).get("Volumes") or ():
        with contextlib.suppress(docker.errors.APIError):
            client.api.remove_volume(v["Name"])
    clear_fabric(cluster)  # its agents' chains and sets in this namespace (fabric_cleanup.py)


class EngineLeak(UserWarning):
    """A test module left ccs networks or containers in the local engine after its clean-ups."""


def ccs_objects_by_cluster() -> dict[str, set[str]] | None:
    """Cluster label -> names of the ccs containers and networks in the local engine; None when
    there is no engine to ask (the module's tests need none, or they report it themselves)."""
    try:
        client = docker.from_env()
    except docker.errors.DockerException:
        return None
    try:
        selector = {"label": [CLUSTER_LABEL]}
        found: dict[str, set[str]] = {}
        for n in client.api.networks(filters=selector):
            found.setdefault(n["Labels"][CLUSTER_LABEL], set()).add(f"network {n['Name']}")
        for c in client.api.containers(all=True, filters=selector):
            name = (c.get("Names") or ["?"])[0].lstrip("/")
            found.setdefault(c["Labels"][CLUSTER_LABEL], set()).add(f"container {name}")
        return found
    except docker.errors.DockerException:
        return None
    finally:
        client.close()


@pytest.fixture(scope="module", autouse=True)
def _engine_leaks(request: pytest.FixtureRequest) -> Iterator[None]:
    """After a module's tests and clean-ups, what appeared in the local engine and is still
    there is named in a warning that says which module. Module, not test, scope: a module's
    shared fixtures keep their cluster's objects from one test to the next on purpose.

    It only reports, never removes: another test session on this engine (a developer's, while
    CI runs) makes objects too, and removing "what appeared" would destroy that session's work.
    Each test cluster has a range of its own (`agent_process.session_pod_cidr`), so a leak
    costs the later tests nothing; the warning is there to find the module that leaks."""
    if request.node.get_closest_marker("docker") is None:  # the module's pytestmark says it uses the engine
        yield
        return
    before = ccs_objects_by_cluster()
    yield
    after = ccs_objects_by_cluster()
    if before is None or after is None:
        return
    left = {cluster: names - before.get(cluster, set()) for cluster, names in after.items()}
    left = {cluster: names for cluster, names in left.items() if names}
    if left:
        warnings.warn(EngineLeak(f"{request.node.nodeid} left in the local engine (or another session made "
                                 "meanwhile): " + "; ".join(f"cluster {c}: {', '.join(sorted(n))}"
                                                          for c, n in sorted(left.items()))), stacklevel=1)
