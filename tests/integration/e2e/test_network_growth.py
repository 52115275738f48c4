"""A node's share of an application network grows past its first block (issue 11), end to end:
ccs-server, the testbed's agents, real engines, routes, iptables and the node resolvers.

An application is deployed on host1 with 2 containers (its first block there is a /28: 13
container addresses), then its ``web`` service is scaled to 13: 14 containers on host1, more
than the first block holds. The control plane hands the pair a second block; every container
runs (none fails with the engine's "no available IPv4 addresses"); a container on the second
block (its own bridge on host1) reaches ``db`` on the first by name and by address over TCP,
and back; another application's container on host1 reaches neither, each refusal paired with a
successful connection to the same address and port from an allowed container. Scaled back
down, the second block is freed.
"""

from __future__ import annotations

import asyncio
import ipaddress
from collections.abc import Iterator

import pytest

from ccs.v1 import resources_pb2 as pb
from controlplane.store import keys
from controlplane.store.etcd import Etcd
from nodeagent.runtime import naming

from .conftest import Cluster3
from .net_probe import hostname, intruder, lookup, one_live, tcp

pytestmark = [pytest.mark.slow, pytest.mark.docker]

SERVE = '["sh", "-c", "nc -ll -p 7000 -e /bin/hostname & wait"]'
WEB = 13  # with db: 14 containers on host1, one more than a /28 holds


def template() -> str:
    return f"""
services:
  db:
    image: local/netcheck:1
    command: {SERVE}
    deploy:
      placement: {{constraints: ["node.labels.growtest==a"]}}
  web:
    image: local/netcheck:1
    command: {SERVE}
    deploy:
      replicas: 1
      placement: {{constraints: ["node.labels.growtest==a"]}}
"""


@pytest.fixture
def on_host1(cluster3: Cluster3) -> Iterator[Cluster3]:
    c = cluster3
    c.ccs("node", "label", "-c", c.name, "host1", "growtest=a")
    yield c
    c.ccs("node", "label", "-c", c.name, "host1", "growtest=", check=False)


def block_keys(c: Cluster3, app: str) -> dict[str, str]:
    """The app's blocks in etcd: key -> subnet (the first blocks and the further ones)."""
    async def read() -> dict[str, str]:
        etcd = Etcd([c.etcd.url])
        await etcd.connect()
        try:
            out = {}
            for prefix in (keys.subnets(c.name), keys.subnet_blocks(c.name)):
                for kv in (await etcd.range(prefix)).kvs:
                    record = pb.SubnetAllocation.FromString(kv.value)
                    if record.application == app:
                        out[kv.key] = record.subnet
            return out
        finally:
            await etcd.close()

    return asyncio.run(read())


def running_web(c: Cluster3, app: str, count: int) -> list[pb.Container]:
    def found() -> list[pb.Container] | None:
        live = [x for x in c.live(app, "web") if x.node == "host1" and x.status.addresses.get("default")]
        return live if len(live) == count else None

    got = c.wait_for(f"{count} web containers running on host1 with addresses", found, timeout=240)
    assert got is not None
    return got


def test_a_nodes_share_grows_past_its_first_block_and_stays_one_network(on_host1: Cluster3, app_name: str) -> None:
    c = on_host1
    c.deploy(app_name, template())
    db = one_live(c, app_name, "db", "host1")
    first = ipaddress.IPv4Network(db.subnets["default"])
    assert first.prefixlen == 28 and not db.subnet_index

    c.ccs("service", "scale", "-c", c.name, f"{app_name}/web", str(WEB))
    web = running_web(c, app_name, WEB)
    failed = [x for x in c.containers(app_name, "web") if x.status.state == pb.CONTAINER_STATE_FAILED]
    assert not failed, [x.status.message for x in failed]
    blocks = {(x.subnet_index.get("default", 0), x.subnets["default"]) for x in web}
    assert {i for i, _ in blocks} == {0, 1}, blocks
    (second_text,) = {s for i, s in blocks if i == 1}
    second = ipaddress.IPv4Network(second_text)
    assert second != first and not second.overlaps(first)
    for x in web:  # each container's address is in the block it was given
        assert ipaddress.IPv4Address(x.status.addresses["default"]) in ipaddress.IPv4Network(x.subnets["default"])
    on_first = [x for x in web if x.subnets["default"] == str(first)]
    on_second = [x for x in web if x.subnets["default"] == str(second)]
    assert len(on_first) + 1 == 13 and on_second  # the /28 is full: db and 12 web
    # The second block is a bridge of its own on host1, with the block as its subnet.
    engine = c.host(1).docker("network", "inspect", "-f", "{{(index .IPAM.Config 0).Subnet}}",
                              naming.network_name(c.name, app_name, "default", 1)).stdout.strip()
    assert engine == str(second)

    x, y = on_second[0], on_first[0]
    db_ip, db_name = db.status.addresses["default"], hostname(c, db)
    x_ip = x.status.addresses["default"]
    # Across the two bridges, by name and by address, both ways (Docker's isolation chains
    # would drop bridge-to-bridge traffic unless ccs's DOCKER-USER chain accepts it first).
    c.wait_for("web on the second block reaches db by name",
               lambda: tcp(c, x, "db") == db_name, timeout=60)
    assert lookup(c, x, "db") == [db_ip]
    assert tcp(c, x, db_ip) == db_name
    assert tcp(c, db, x_ip) == hostname(c, x)
    assert tcp(c, y, x_ip) == hostname(c, x)

    other = f"{app_name}-x"
    try:
        c.ccs("node", "label", "-c", c.name, "host1", "nettest=a")
        c.deploy(other, intruder("a"))
        stranger = one_live(c, other, "intruder", "host1")
        for target, name, allowed in ((db_ip, db_name, x), (x_ip, hostname(c, x), db)):
            assert tcp(c, stranger, target) == "", f"another app connected to {target}"
            assert tcp(c, allowed, target) == name  # paired: the same address and port, allowed
        assert db_ip not in lookup(c, stranger, "db")
    finally:
        c.ccs("app", "rm", "-c", c.name, other, check=False)
        c.ccs("node", "label", "-c", c.name, "host1", "nettest=", check=False)

    # In etcd: the first block at the key it always had, the second under its own.
    first_key = keys.subnet(c.name, "host1", app_name, "default")
    second_key = keys.subnet(c.name, "host1", app_name, "default", 1)
    assert block_keys(c, app_name) == {first_key: str(first), second_key: str(second)}

    # Scaled back down to one web container, the second block is freed while the first stays.
    c.ccs("service", "scale", "-c", c.name, f"{app_name}/web", "1")
    c.wait_for("the second block freed, the first kept",
               lambda: block_keys(c, app_name) == {first_key: str(first)}, timeout=180)
