"""Node loss and named volumes (``x-ccs.on_node_loss``) on the 3-host testbed.

One application, two services with a named volume each, both on host2: ``keep`` says nothing
(a service with a named volume waits for its node by default), ``move`` says
``on_node_loss: reschedule``. host2 is killed. ``move`` is replaced on host3 — which also shows
that the down grace has passed — with an empty volume there; ``keep`` is not replaced anywhere and
its status says it waits for host2. host2 comes back: ``keep`` runs on host2 again, with the file
written before the kill.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from ccs.v1 import resources_pb2 as pb

from .conftest import Cluster3
from .helpers import IDLE

pytestmark = [pytest.mark.slow, pytest.mark.docker]

LABEL = "nodeloss"
TEMPLATE = f"""
services:
  keep:
    image: local/busybox:1
    command: {IDLE}
    volumes: [keep-data:/data]
    restart: always
    deploy:
      restart_policy: {{delay: 1s}}
      placement: {{constraints: ["node.labels.{LABEL}==yes"]}}
  move:
    image: local/busybox:1
    command: {IDLE}
    volumes: [move-data:/data]
    restart: always
    x-ccs: {{on_node_loss: reschedule}}
    deploy:
      restart_policy: {{delay: 1s}}
      placement: {{constraints: ["node.labels.{LABEL}==yes"]}}
volumes:
  keep-data:
  move-data:
"""


@pytest.fixture
def only_host2(cluster3: Cluster3) -> Iterator[Cluster3]:
    """host2 takes the services at first; the label is removed from every host afterwards."""
    c = cluster3
    c.ccs("node", "label", "-c", c.name, "host2", f"{LABEL}=yes")
    yield c
    for host in c.host_names:
        c.ccs("node", "label", "-c", c.name, host, f"{LABEL}=", check=False)


def one_live(c: Cluster3, app: str, service: str, node: str, replacing: str = "") -> pb.Container:
    """The service's one live container, once it runs on ``node`` (and is not ``replacing``)."""
    def found() -> pb.Container | None:
        live = c.live(app, service)
        assert len(live) <= 1, [(x.meta.name, x.node) for x in live]
        return live[0] if live and live[0].node == node and live[0].meta.id != replacing else None

    got = c.wait_for(f"{app}/{service} running on {node}", found, timeout=90)
    assert got is not None
    return got


def sh(c: Cluster3, x: pb.Container, script: str) -> str:
    res = c.host(int(x.node.removeprefix("host"))).docker("exec", x.status.docker_id, "sh", "-c", script)
    return res.stdout.strip()


def test_a_service_with_a_named_volume_waits_for_its_node_and_returns_with_its_data(
    only_host2: Cluster3, app_name: str
) -> None:
    c = only_host2
    c.deploy(app_name, TEMPLATE)
    keep = one_live(c, app_name, "keep", "host2")
    move = one_live(c, app_name, "move", "host2")
    assert sh(c, keep, "echo kept-$HOSTNAME > /data/f && cat /data/f").startswith("kept-")
    written = sh(c, keep, "cat /data/f")
    sh(c, move, "echo moved > /data/f")
    c.wait_networks_settled("host2", app_name)  # a crash mid `network rm` bricks dockerd (moby#45057)
    c.ccs("node", "label", "-c", c.name, "host3", f"{LABEL}=yes")  # somewhere to move to

    c.host(2).kill()
    try:
        moved = one_live(c, app_name, "move", "host3")  # the down grace has passed
        assert sh(c, moved, "cat /data/f 2>/dev/null || echo empty") == "empty"  # a new, empty volume

        shown = c.ccs_json("service", "get", "-c", c.name, f"{app_name}/keep")
        assert ("slot 1 waits for its node host2 to return (x-ccs.on_node_loss defaults to wait: "
                "the service has named volumes on that node)") in shown["status"]["message"], shown
        [record] = c.containers(app_name, "keep")
        assert (record.meta.id, record.node, record.desired_state) == (
            keep.meta.id, "host2", pb.DESIRED_STATE_RUNNING)
        for host in ("host1", "host3"):
            assert not c.docker_containers(host, app_name, "keep", running_only=False), host
    finally:
        c.host(2).start()
    c.wait_nodes_ready()

    # Its engine stopped it with the host: the agent reports it exited, and its restart (a new
    # container record, as every ccs restart) stays on host2, where its volume is.
    back = one_live(c, app_name, "keep", "host2", replacing=keep.meta.id)
    assert sh(c, back, "cat /data/f") == written  # the same volume, with its data
    for host in ("host1", "host3"):
        assert not c.docker_containers(host, app_name, "keep", running_only=False), host
    assert one_live(c, app_name, "move", "host3").meta.id == moved.meta.id
    shown = c.ccs_json("service", "get", "-c", c.name, f"{app_name}/keep")
    assert "waits for its node" not in shown["status"]["message"], shown
