"""``ccs app update --strategy blue-green --wait`` as a user runs it (the CLI as a subprocess)
against a real ``ccs-server`` on etcd with one real ``ccs-agent`` on the Docker Engine.

Before: ``--wait`` followed the release until it ended. A blue-green release ends only after an
operator's confirm (or rollback), so the command sat in AWAITING_SHIFT until its timeout and
exited 9. Now it exits 0 once the new side is up and the release awaits a shift, says so and
what moves it on, and leaves the release where it is (nothing is confirmed on the user's behalf).
"""

from __future__ import annotations

import asyncio
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from ccs.v1 import api_pb2
from ccs.v1 import resources_pb2 as pb
from tests.conftest import ServerProc
from tests.integration.agent_process import agent_process, create_cluster, remove_from_engine
from tests.integration.grpc_helpers import call
from tests.integration.polling import wait_for

from . import cli_process
from .docker_fixtures import TestImages, docker_client, test_image  # noqa: F401

pytestmark = [pytest.mark.etcd, pytest.mark.docker, pytest.mark.slow, pytest.mark.timeout(300)]

WAIT = 90.0
TEMPLATE = """
services:
  web:
    image: local/webapp:${TAG:-v1}
    deploy: {replicas: 2}
"""


@pytest.fixture
def cluster(ccs_server: ServerProc, unique: str, tmp_path: Path, test_image: TestImages) -> Iterator[str]:  # noqa: F811
    token = create_cluster(ccs_server, unique)
    try:
        with agent_process(ccs_server.address, token, f"{unique}-n1", tmp_path / "agent", tmp_path / "agent.log"):
            wait_for("the node READY", lambda: call(ccs_server, lambda s: s.nodes.GetNode(
                api_pb2.GetNodeRequest(cluster=unique, name=f"{unique}-n1"), metadata=s.metadata,
                timeout=10)).status.state == pb.NODE_STATE_READY, WAIT)
            yield unique
    finally:
        remove_from_engine(unique)


def cli(server: ServerProc, *args: str) -> subprocess.CompletedProcess[str]:
    return cli_process.cli(server, *args, timeout=WAIT + 60)  # past the --timeout the commands are given


def test_update_blue_green_wait_exits_0_when_the_new_side_is_up_and_awaits_a_shift(
    ccs_server: ServerProc, cluster: str, tmp_path: Path,
) -> None:
    compose = tmp_path / "compose.yaml"
    compose.write_text(TEMPLATE)
    deployed = cli(ccs_server, "app", "deploy", "-c", cluster, "-f", str(compose), "--name", "shop",
                   "--wait", "--timeout", f"{WAIT:.0f}s")
    assert deployed.returncode == 0, deployed.stderr

    updated = cli(ccs_server, "app", "update", "-c", cluster, "shop", "--env", "TAG=v2", "--strategy",
                  "blue-green", "--wait", "--timeout", f"{WAIT:.0f}s")
    assert updated.returncode == 0, (updated.stdout, updated.stderr)
    assert ("release r000001 is up and awaits a shift: the new side is ready (2/2), weight new 0% / old 100%"
            in updated.stderr), updated.stderr

    async def release() -> pb.Release:
        async with ccs_server.client() as client:
            return await client.releases.get(cluster, "shop")

    rel = asyncio.run(release())
    assert rel.status.phase == pb.RELEASE_PHASE_AWAITING_SHIFT and not rel.status.requests
    assert (rel.status.updated, rel.status.total, rel.status.weight) == (2, 2, 0)

    # The release goes on as before once the operator acts: confirm, then it ends SUCCEEDED.
    confirmed = cli(ccs_server, "release", "confirm", "-c", cluster, "shop", "--wait", "--timeout",
                    f"{WAIT:.0f}s")
    assert confirmed.returncode == 0, confirmed.stderr
    assert "release r000001 succeeded" in confirmed.stdout
