"""Node operations: a drain moves containers start-first (capacity never drops), and ``node rm``
refuses a node that still has containers unless forced; the removed host then joins again."""

from __future__ import annotations

import pytest

from ccs.v1 import resources_pb2 as pb

from .conftest import LIVE, Cluster3
from .helpers import IDLE, ids

pytestmark = [pytest.mark.slow, pytest.mark.docker]

IDLE3 = f"""
services:
  idle:
    image: local/busybox:1
    command: {IDLE}
    deploy: {{replicas: 3}}
"""


def test_drain_moves_containers_start_first(cluster3: Cluster3, app_name: str) -> None:
    c = cluster3
    c.deploy(app_name, IDLE3)
    c.wait_for("3 idle, one per host", lambda: sorted(x.node for x in c.live(app_name, "idle"))
               == c.host_names)
    c.ccs("node", "drain", "-c", c.name, "host2")
    try:
        api_min, docker_min = 3, 3

        def drained() -> bool:
            nonlocal api_min, docker_min
            records = c.containers(app_name, "idle")
            running = [x for x in records if x.status.state in LIVE]  # whatever their desired state
            docker = c.docker_by_host(app_name, "idle")
            api_min = min(api_min, len(running))
            docker_min = min(docker_min, sum(len(v) for v in docker.values()))
            assert not docker["host2"], "host2 still runs a container"
            live = c.live(app_name, "idle")
            assert len(live) == 3 and "host2" not in {x.node for x in live}, [x.node for x in live]
            assert ids(docker) == {x.status.docker_id for x in live}
            return True

        c.wait_for("host2 drained: 3 idle on host1/host3, none on host2", drained, interval=0.2)
        # Sampled all along the drain: capacity never dropped below the 3 replicas.
        assert (api_min, docker_min) == (3, 3)
        node = c.nodes()["host2"]
        assert node.spec.availability == pb.NODE_AVAILABILITY_DRAIN
    finally:
        c.ccs("node", "activate", "-c", c.name, "host2")


def test_node_rm_refused_while_it_has_containers_unless_forced(cluster3: Cluster3, app_name: str) -> None:
    c = cluster3
    c.deploy(app_name, IDLE3)
    c.wait_for("3 idle, one per host", lambda: sorted(x.node for x in c.live(app_name, "idle"))
               == c.host_names)
    res = c.ccs("node", "rm", "-c", c.name, "host3", check=False)
    assert res.returncode == 5, (res.returncode, res.stderr)
    assert "host3" in res.stderr and "container" in res.stderr and "drain" in res.stderr, res.stderr
    assert "host3" in c.nodes()

    c.bed.agent_stop("host3")
    try:
        c.ccs("node", "rm", "-c", c.name, "host3", "--force")
        assert "host3" not in c.nodes()

        def moved() -> bool:
            live = c.live(app_name, "idle")
            assert len(live) == 3 and "host3" not in {x.node for x in live}, [x.node for x in live]
            return True

        c.wait_for("3 idle on host1/host2 after host3 was removed", moved, timeout=60)
    finally:
        # Join again as a new node: a fresh identity from the join token.
        (c.agent_state_dir("host3") / "identity.json").unlink(missing_ok=True)
        c.start_agent("host3")
    c.wait_nodes_ready()

    def no_stale() -> bool:
        live = c.live(app_name, "idle")
        docker = c.docker_by_host(app_name, "idle")
        assert ids(docker) == {x.status.docker_id for x in live}, {h: len(v) for h, v in docker.items()}
        return True

    # The container left on host3 belongs to the removed node; the re-joined agent must not keep it.
    c.wait_for("no container of the removed node left running on host3", no_stale, timeout=60)
