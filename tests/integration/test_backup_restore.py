"""``ccs-server backup FILE`` and ``ccs-server restore FILE`` on a real control plane: a
``ccs-server`` with its embedded etcd, one real ``ccs-agent`` on the Docker Engine, an
application of two running containers.

The test backs up while the server runs, stops the server, wipes its etcd data dir, restores the
backup onto it and starts the server again on the restored data (same state dir, so the same
master and secrets key files, which the backup does not hold). Then the application reads back
as before, the agent's node is READY again, and the containers are the same Docker containers,
never restarted (same ids, same start times): the agent kept them running while the control
plane was away, and the restored state still wants exactly them.

Before: ``ccs-server`` had no ``backup`` or ``restore`` command.
"""

from __future__ import annotations

import asyncio
import base64
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import docker
import pytest

from ccs.v1 import resources_pb2 as pb
from tests.conftest import ServerProc, free_port, start_server
from tests.integration.agent_process import agent_process, create_cluster, remove_from_engine
from tests.integration.docker_fixtures import CLUSTER_LABEL
from tests.integration.polling import wait_for

from .docker_fixtures import TestImages, docker_client, test_image  # noqa: F401

pytestmark = [pytest.mark.etcd, pytest.mark.docker, pytest.mark.slow, pytest.mark.timeout(300)]

ROOT = Path(__file__).resolve().parents[2]
WAIT = 90.0
TEMPLATE = """
services:
  web:
    image: local/webapp:v1
    deploy: {replicas: 2}
"""


def server_command(*args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CCS_")}
    return subprocess.run([sys.executable, "-m", "controlplane.main", *args], capture_output=True, text=True,
                          cwd=ROOT, env=env, timeout=120, check=False)


def engine_containers(engine: docker.DockerClient, cluster: str) -> dict[str, str]:
    """Docker id -> start time of the cluster's containers in the engine."""
    found = engine.api.containers(all=True, filters={"label": [f"{CLUSTER_LABEL}={cluster}"]})
    return {c["Id"]: engine.api.inspect_container(c["Id"])["State"]["StartedAt"] for c in found}


def node_ready(srv: ServerProc, cluster: str, node: str) -> bool:
    async def read() -> bool:
        async with srv.client() as client:
            return any(n.meta.name == node and n.status.state == pb.NODE_STATE_READY
                       for n in await client.nodes.list(cluster))
    return asyncio.run(read())


def application(srv: ServerProc, cluster: str) -> tuple[pb.Application, list[tuple[str, str, str]]]:
    """The application once ready, and its containers (name, node, docker id)."""
    async def read() -> tuple[pb.Application, list[tuple[str, str, str]]]:
        async with srv.client() as client:
            await client.applications.wait(cluster, "shop", timeout=WAIT)
            app = (await client.applications.get(cluster, "shop")).application
            containers = await client.containers.list(cluster, application="shop")
            return app, sorted((c.meta.name, c.node, c.status.docker_id) for c in containers)
    return asyncio.run(read())


@pytest.fixture
def etcd_port() -> int:
    return free_port()


@pytest.fixture
def server(tmp_path: Path, etcd_port: int) -> Iterator[list[ServerProc]]:
    """A server with its own embedded etcd (on ``etcd_port``), in a list: the test replaces it."""
    extra = ["--embedded-etcd-port", str(etcd_port), "--shutdown-grace", "0.5"]
    box = [start_server(tmp_path / "state", None, tmp_path / "config.yaml", extra=extra)]
    try:
        yield box
    finally:
        box[0].stop()


def test_backup_wipe_restore_brings_back_the_applications_and_restarts_no_container(
    server: list[ServerProc], etcd_port: int, unique: str, tmp_path: Path, test_image: TestImages,  # noqa: F811
    docker_client: docker.DockerClient,  # noqa: F811
) -> None:
    srv = server[0]
    state, port = srv.state_dir, int(srv.address.rsplit(":", 1)[1])
    extra = ["--embedded-etcd-port", str(etcd_port), "--shutdown-grace", "0.5"]
    location = ["--state-dir", str(state), "--embedded-etcd-port", str(etcd_port)]
    token = create_cluster(srv, unique)
    node = f"{unique}-n1"
    try:
        with agent_process(srv.address, token, node, tmp_path / "agent", tmp_path / "agent.log"):
            wait_for("the node READY", lambda: node_ready(srv, unique, node), WAIT)

            async def deploy() -> None:
                async with srv.client() as client:
                    await client.applications.create(unique, "shop", TEMPLATE)

            asyncio.run(deploy())
            app_before, containers_before = application(srv, unique)
            engine_before = engine_containers(docker_client, unique)
            assert len(containers_before) == 2 and len(engine_before) == 2

            backup_file = tmp_path / "ccs.backup"
            done = server_command("backup", str(backup_file), *location)
            assert done.returncode == 0, done.stderr
            assert f"backup written: {backup_file}" in done.stdout
            assert (f"not in the backup: the master key ({state / 'master.key'}) and the secrets key "
                    f"({state / 'secrets.key'})") in done.stdout
            assert backup_file.stat().st_mode & 0o777 == 0o600
            snapshot = backup_file.read_bytes()
            for key_file in ("master.key", "secrets.key"):
                text = (state / key_file).read_text().strip()
                assert text.encode() not in snapshot and base64.b64decode(text) not in snapshot, key_file

            # A restore never goes onto live or existing data.
            refused = server_command("restore", str(backup_file), *location)
            assert refused.returncode == 1 and "an etcd is running on it; stop ccs-server first" in refused.stderr
            assert srv.stop() == 0
            refused = server_command("restore", str(backup_file), *location)
            assert refused.returncode == 1 and "not empty; a restore goes onto an empty data dir" in refused.stderr

            shutil.rmtree(state / "etcd")  # the wipe
            restored = server_command("restore", str(backup_file), *location)
            assert restored.returncode == 0, restored.stderr
            assert f"restored {backup_file} into {state / 'etcd'}" in restored.stdout

            srv = start_server(state, None, tmp_path / "config.yaml", port=port, extra=extra)
            server[0] = srv
            wait_for("the node READY again", lambda: node_ready(srv, unique, node), WAIT)
            app_after, containers_after = application(srv, unique)
            assert app_after.meta.id == app_before.meta.id and app_after.revision == app_before.revision
            assert app_after.spec == app_before.spec
            assert containers_after == containers_before
            assert engine_containers(docker_client, unique) == engine_before  # same ids, never restarted
    finally:
        remove_from_engine(unique)
