"""Application networks through ccs-server and a real agent (see test_app_subnets.py for the runtime
half): a pass gives the application its block and the agent builds the network on it; cluster
pod ranges are distinct, validated and freed with their cluster."""

from __future__ import annotations

import asyncio
import ipaddress
import json
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import docker
import pytest

from ccs.v1 import resources_pb2 as pb
from controlplane.ipam import DEFAULT_NETWORK, block_prefix
from controlplane.store import keys
from controlplane.store.etcd import Etcd
from tests.conftest import start_etcd, start_server
from tests.integration.agent_process import agent_process

from . import cli_process
from .docker_fixtures import TestImages, docker_client, remove_cluster_objects, test_image  # noqa: F401
from .test_app_subnets import CLUSTER, POD_RANGE, WAIT, clean_engine, network_subnet  # noqa: F401

pytestmark = [pytest.mark.docker]



# ------------------------------------------------------------------ through server and agent


def _cli(server: Any, *args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return cli_process.cli(server, *args, timeout=timeout)  # a deploy may wait for the agent


def _ok(server: Any, *args: str) -> str:
    return cli_process.ok(server, *args, timeout=120)


async def _subnet_keys(etcd_url: str, cluster: str) -> dict[str, str]:
    etcd = Etcd([etcd_url])
    await etcd.connect()
    try:
        res = await etcd.range(keys.subnets(cluster))
        return {kv.key: pb.SubnetAllocation.FromString(kv.value).subnet for kv in res.kvs}
    finally:
        await etcd.close()


@pytest.mark.etcd
@pytest.mark.slow
@pytest.mark.timeout(300)
async def test_deploy_through_the_server_and_agent(
    ccs_server: Any, clean_engine: docker.DockerClient, test_image: TestImages, tmp_path: Path,  # noqa: F811
) -> None:
    """The pass gives the app its block, the agent builds the network on it, `app rm` frees it;
    a block the host cannot have ends `ccs app deploy --wait` with exit 8 and the engine's words."""
    cluster, node, pod_range = CLUSTER, f"{CLUSTER}-node", ipaddress.IPv4Network("100.101.0.0/16")
    _ok(ccs_server, "cluster", "create", cluster, "--pod-cidr", str(pod_range))
    token = _ok(ccs_server, "cluster", "join-token", cluster).strip()
    first = next(pod_range.subnets(new_prefix=block_prefix(1)))
    clean_engine.api.create_network(  # squats on the first block the allocator hands out
        f"{CLUSTER}-squatter", driver="bridge",
        ipam={"Driver": "default", "Config": [{"Subnet": str(first)}]},
    )
    try:
        with agent_process(ccs_server.address, token, node, tmp_path / "agent", tmp_path / "agent.log"):
            compose = tmp_path / "app" / "compose.yaml"
            compose.parent.mkdir()
            compose.write_text(f'services:\n  web:\n    image: {test_image.busybox}\n    command: ["sleep", "3600"]\n')
            bad = _cli(ccs_server, "app", "deploy", "-c", cluster, "-f", str(compose), "--name", "squatted",
                       "--wait", "--timeout", "90s")
            assert bad.returncode == 8, (bad.stdout, bad.stderr)
            assert "Pool overlaps with other one on this address space" in bad.stderr.splitlines()[-1]
            subnets = await _subnet_keys(ccs_server.etcd_url, cluster)
            assert subnets == {keys.subnet(cluster, node, "squatted", DEFAULT_NETWORK): str(first)}

            _ok(ccs_server, "app", "deploy", "-c", cluster, "-f", str(compose), "--name", "good",
                "--wait", "--timeout", "90s")
            good_key = keys.subnet(cluster, node, "good", DEFAULT_NETWORK)
            subnets = await _subnet_keys(ccs_server.etcd_url, cluster)
            second = ipaddress.IPv4Network(subnets[good_key])
            assert second != first and second.subnet_of(pod_range)
            assert network_subnet(clean_engine, "good") == str(second)
            (record,) = json.loads(_ok(ccs_server, "container", "ls", "-c", cluster, "-a", "good", "-o", "json"))
            assert record["subnets"] == {DEFAULT_NETWORK: str(second)}
            # The agent reported the container's address on the app network, inside its block
            # (the --wait saw it running, and the address travels with that status).
            address = ipaddress.IPv4Address(record["status"]["addresses"][DEFAULT_NETWORK])
            assert address in second
            # The next pass puts it in the service's status, which `ccs service get` shows.
            deadline = time.monotonic() + WAIT
            while not (service := json.loads(_ok(ccs_server, "service", "get", "-c", cluster, "good/web",
                                                 "-o", "json")))["status"].get("addresses"):
                assert time.monotonic() < deadline, f"no addresses in the service status: {service}"
                await asyncio.sleep(0.2)
            assert service["status"]["addresses"] == [
                {"container": record["meta"]["name"], "node": node, "network": DEFAULT_NETWORK,
                 "address": str(address)}]

            _ok(ccs_server, "app", "rm", "-c", cluster, "good")
            deadline = time.monotonic() + WAIT
            while good_key in await _subnet_keys(ccs_server.etcd_url, cluster):
                assert time.monotonic() < deadline, "the block of a removed application was never freed"
                await asyncio.sleep(0.2)
    finally:
        _cli(ccs_server, "cluster", "rm", cluster, "--force")


@pytest.fixture
def fresh_server(tmp_path: Path) -> Iterator[Any]:
    """A server on an etcd of its own: which default ranges are free depends on every cluster
    the server holds, so the session server (with other tests' clusters, and past 16 clusters
    the defaults repeat) cannot show the rules deterministically."""
    store = start_etcd(tmp_path)
    srv = start_server(tmp_path / "state", store.url, tmp_path / "config.yaml")
    try:
        yield srv
    finally:
        srv.stop()
        store.stop()


@pytest.mark.etcd
def test_cluster_ranges_are_distinct_validated_and_freed_with_the_cluster(fresh_server: Any) -> None:
    ccs_server = fresh_server
    names = [f"{CLUSTER}-r{i}" for i in range(5)]
    try:
        first = json.loads(_ok(ccs_server, "cluster", "create", names[0], "-o", "json"))["pod_cidr"]
        second = json.loads(_ok(ccs_server, "cluster", "create", names[1], "-o", "json"))["pod_cidr"]
        assert first != second
        for cidr in (first, second):
            net = ipaddress.IPv4Network(cidr)
            assert net.prefixlen == 12 and net.subnet_of(ipaddress.IPv4Network("10.0.0.0/8"))

        taken = _cli(ccs_server, "cluster", "create", names[2], "--pod-cidr", first)
        assert taken.returncode == 4, taken.stderr
        assert taken.stderr.strip() == f"error: pod_cidr: {first} overlaps {first}, the range of another cluster"
        public = _cli(ccs_server, "cluster", "create", names[2], "--pod-cidr", "8.8.0.0/16")
        assert public.returncode == 4 and "pod_cidr: must lie inside a private range" in public.stderr
        assert _cli(ccs_server, "cluster", "get", names[2]).returncode == 3  # nothing half written

        _ok(ccs_server, "cluster", "rm", names[0])
        again = json.loads(_ok(ccs_server, "cluster", "create", names[3], "--pod-cidr", first, "-o", "json"))
        assert again["pod_cidr"] == first
    finally:
        for name in names:
            _cli(ccs_server, "cluster", "rm", name, "--force")
