"""One real ``ccs-server`` (the session's), one real ``ccs-agent`` on the local engine and a local
registry: what ``ccs app deploy|apply --build`` needs end to end, on one host (no testbed lock).

The CLI runs as a user runs it: a subprocess with the server's client config, HOME pointing at an
empty directory (so no ~/.docker/config.json of the machine is read or written) and the engine of
DOCKER_HOST (default: the local socket), which is also the agent's: an image the CLI built is
present where the agent runs it.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import docker
import pytest

from ccs.v1 import api_pb2
from ccs.v1 import resources_pb2 as pb
from tests.conftest import ServerProc
from tests.integration import polling
from tests.integration.agent_process import agent_process, create_cluster, remove_from_engine
from tests.integration.cli_process import cli
from tests.integration.grpc_helpers import call
from tests.integration.local_registry import local_registry


@dataclass
class BuildWorld:
    server: ServerProc
    cluster: str
    registry: str
    home: Path

    def ccs(self, *args: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
        """The CLI with the docker CLI on its PATH (a build runs it) and the test's engine."""
        env = {"PATH": "/usr/local/bin:/usr/bin:/bin"}
        if "DOCKER_HOST" in os.environ:
            env["DOCKER_HOST"] = os.environ["DOCKER_HOST"]
        return cli(self.server, *args, home=self.home, timeout=timeout, env=env)

    def services(self, app: str) -> dict[str, pb.Service]:
        resp = call(self.server, lambda s: s.apps.GetApplication(api_pb2.GetApplicationRequest(
            cluster=self.cluster, name=app), metadata=s.metadata, timeout=10))
        return {svc.meta.name: svc for svc in resp.services}

    def containers(self, app: str) -> list[pb.Container]:
        resp = call(self.server, lambda s: s.containers.ListContainers(api_pb2.ListContainersRequest(
            cluster=self.cluster, application=app), metadata=s.metadata, timeout=10))
        return list(resp.containers)


@pytest.fixture
def build_world(ccs_server: ServerProc, unique: str, tmp_path: Path) -> Iterator[BuildWorld]:
    token = create_cluster(ccs_server, unique)
    home = tmp_path / "home"
    home.mkdir()
    try:
        with local_registry(tmp_path / "registry") as registry, agent_process(
            ccs_server.address, token, f"{unique}-n1", tmp_path / "agent", tmp_path / "agent.log"
        ):
            polling.wait_for("the node READY", lambda: call(ccs_server, lambda s: s.nodes.GetNode(
                api_pb2.GetNodeRequest(cluster=unique, name=f"{unique}-n1"), metadata=s.metadata,
                timeout=10)).status.state == pb.NODE_STATE_READY, timeout=90)
            yield BuildWorld(ccs_server, unique, registry, home)
    finally:
        remove_from_engine(unique)
        _remove_pushed_images(tmp_path)


def _remove_pushed_images(tmp_path: Path) -> None:
    """The tags the test's builds left in the engine (its registry's address is in their names)."""
    engine = docker.from_env()
    try:
        address = (tmp_path / "registry" / "registry.yml").read_text().split("addr: ")[1].strip()
        for image in engine.images.list():
            for tag in image.tags:
                if tag.startswith(address + "/"):
                    engine.images.remove(tag, noprune=False)
    except (OSError, IndexError, docker.errors.APIError):
        pass
    finally:
        engine.close()
