"""The agent's network fabric on two testbed hosts: real engines, real routes, iptables, DNS.

Each host is a network namespace with its own dockerd (deploy/testbed). In each namespace the
agent's `NetworkFabric` runs (tests/integration/fabric_node.py, fed hand-built maps, no
control plane), on bridge networks made as the agent makes them (a subnet from the map):

    host1 (10.77.0.11)                         host2 (10.77.0.12)
      shop/default 10.250.0.0/28: shop1          shop/default 10.250.0.16/28: shop2 (+ :18080)
      blog/default 10.250.0.32/28: blog1

Every container serves TCP 7000 (`nc -e hostname`: the answer names who answered) and UDP
7001 (udpecho), and uses the node resolver as DNS server, as ccs containers do. Every refused
connection is paired, in the same test, with a successful one to the same address and port
from a container that is allowed.
"""

from __future__ import annotations

import contextlib
import select
import subprocess
import sys
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import docker
import pytest
from docker.types import IPAMConfig, IPAMPool

import tests.testbed as tb
from ccs.v1 import agent_pb2 as apb
from nodeagent.network.routes import PROTO
from nodeagent.network.rules import Names
from tests.testbed import Host, Testbed

pytestmark = [pytest.mark.docker, pytest.mark.slow]

REPO = Path(__file__).resolve().parents[2]
IMAGE = "local/netcheck:1"
bed = tb.testbed_fixture(2, scope="module", images=("local/busybox:1", IMAGE))

CLUSTER = f"fab{uuid.uuid4().hex[:6]}"
# Not the agent's default (169.254.20.53): the e2e cluster's agents, which share these hosts'
# namespaces in a full run, serve theirs there.
RESOLVER = "169.254.20.99"
POD = "10.250.0.0/16"
SHOP1, SHOP2, BLOG1, EXTRA = "10.250.0.0/28", "10.250.0.16/28", "10.250.0.32/28", "10.250.0.64/28"
SERVE = "nc -ll -p 7000 -e /bin/hostname & udpecho serve 7001 & wait"
ANSWER_TIMEOUT = 60.0  # the helper answers within a second; this only bounds a hung helper


class Node:
    """One host: its engine and the fabric helper running in its namespace."""

    def __init__(self, host: Host, tmp: Path) -> None:
        self.host = host
        self.name = host.name
        self.engine = docker.DockerClient(base_url=host.docker_host, timeout=120)
        self.tmp = tmp
        argv = [sys.executable, str(REPO / "tests" / "integration" / "fabric_node.py"), "--cluster", CLUSTER,
                "--node", host.name, "--resolver", RESOLVER, "--answer", "outside.test=192.0.2.7"]
        self.proc = subprocess.Popen(
            ["nsenter", f"--net={host.netns_path}", "--", *argv], cwd=REPO, text=True,
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=open(tmp / f"{host.name}.log", "w"),  # noqa: SIM115
            env={"PYTHONPATH": str(REPO), "PATH": "/usr/sbin:/usr/bin:/sbin:/bin"},
        )
        assert self.read().startswith("ready"), "the fabric helper did not start"

    def read(self) -> str:
        assert self.proc.stdout is not None
        ready, _, _ = select.select([self.proc.stdout], [], [], ANSWER_TIMEOUT)
        line = self.proc.stdout.readline() if ready else ""
        if not line:
            log = (self.tmp / f"{self.name}.log").read_text()
            raise AssertionError(f"{self.name}: the fabric helper did not answer; its log:\n{log[-3000:]}")
        return line.strip()

    def send(self, command: str) -> str:
        assert self.proc.stdin is not None
        self.proc.stdin.write(command + "\n")
        self.proc.stdin.flush()
        return self.read()

    def apply(self, m: apb.NetworkMap) -> None:
        path = self.tmp / f"map-{self.name}-{m.version}.binpb"
        path.write_bytes(m.SerializeToString())
        answer = self.send(f"map {path}")
        assert answer == f"applied {m.version}", f"{self.name}: {answer}"

    def sh(self, *argv: str) -> str:
        return self.host.in_netns(list(argv)).stdout

    def network(self, name: str, subnet: str) -> None:
        self.engine.networks.create(name, driver="bridge", labels={"ccs.cluster": CLUSTER},
                                    ipam=IPAMConfig(pool_configs=[IPAMPool(subnet=subnet)]))

    def run(self, name: str, network: str, **kwargs: object) -> Box:
        c = self.engine.containers.run(IMAGE, ["sh", "-c", SERVE], name=name, hostname=name, network=network,
                                       dns=[RESOLVER], labels={"ccs.cluster": CLUSTER}, detach=True, **kwargs)
        c.reload()
        return Box(c, c.attrs["NetworkSettings"]["Networks"][network]["IPAddress"])

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self.send("quit")
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.proc.wait(10)
        if self.proc.poll() is None:
            self.proc.kill()
        for c in self.engine.containers.list(all=True, filters={"label": f"ccs.cluster={CLUSTER}"}):
            c.remove(force=True)
        for n in self.engine.networks.list(filters={"label": f"ccs.cluster={CLUSTER}"}):
            n.remove()
        self.engine.close()


@dataclass
class Box:
    container: docker.models.containers.Container
    ip: str

    def sh(self, script: str) -> tuple[int, str]:
        code, out = self.container.exec_run(["sh", "-c", script])
        return int(code), out.decode(errors="replace").strip()

    def tcp(self, target: str, port: int = 7000) -> str:
        """Who answered on TCP (its hostname), "" when nobody did."""
        return self.sh(f"nc -w 3 {target} {port} </dev/null 2>/dev/null")[1]

    def udp(self, target: str) -> str:
        code, out = self.sh(f"udpecho send {target} 7001 ping")
        return out if code == 0 else ""


def network(app: str, blocks: list[tuple[str, str, str]], names: dict[str, list[str]]) -> apb.AppNetwork:
    return apb.AppNetwork(
        application=app, network="default",
        blocks=[apb.NetworkBlock(node=n, node_address=a, subnet=s) for n, a, s in sorted(blocks, key=lambda b: b[2])],
        names=[apb.NetworkName(name=k, addresses=sorted(v)) for k, v in sorted(names.items())],
    )


@dataclass
class World:
    bed: Testbed
    h1: Node
    h2: Node
    shop1: Box
    shop2: Box
    blog1: Box

    def maps(self, version: int, *, with_host2: bool = True) -> tuple[apb.NetworkMap, apb.NetworkMap]:
        a1, a2 = ("host1", self.h1.host.ip, SHOP1), ("host2", self.h2.host.ip, SHOP2)
        shop_blocks = [a1, a2] if with_host2 else [a1]
        names = {"api": [self.shop2.ip], "web": [self.shop1.ip]} if with_host2 else {"web": [self.shop1.ip]}
        shop = network("shop", shop_blocks, names)
        blog = network("blog", [("host1", self.h1.host.ip, BLOG1)], {"blog": [self.blog1.ip]})
        m1 = apb.NetworkMap(cluster=CLUSTER, version=version, pod_cidr=POD, networks=[blog, shop])
        m2 = apb.NetworkMap(cluster=CLUSTER, version=version, pod_cidr=POD, networks=[shop] if with_host2 else [])
        return m1, m2


@pytest.fixture(scope="module")
def world(bed: Testbed, tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    tmp = tmp_path_factory.mktemp("fabric")
    h1, h2 = Node(bed.host(1), tmp), Node(bed.host(2), tmp)
    try:
        h1.network("fab-shop", SHOP1)
        h1.network("fab-blog", BLOG1)
        h2.network("fab-shop", SHOP2)
        shop1 = h1.run("shop1", "fab-shop")
        blog1 = h1.run("blog1", "fab-blog")
        shop2 = h2.run("shop2", "fab-shop", ports={"7000/tcp": (h2.host.ip, 18080)})
        w = World(bed, h1, h2, shop1, shop2, blog1)
        m1, m2 = w.maps(1)
        h1.apply(m1)
        h2.apply(m2)
        yield w
    finally:
        h1.close()
        h2.close()


def test_tcp_across_nodes_by_address_keeps_the_senders_address(world: World) -> None:
    # host2 admits only shop's blocks: were the source masqueraded to host1's address, this fails.
    assert world.shop1.tcp(world.shop2.ip) == "shop2"
    assert world.shop2.tcp(world.shop1.ip) == "shop1"


def test_routes_point_at_the_other_node_with_the_ccs_protocol(world: World) -> None:
    assert f"{SHOP2} via {world.h2.host.ip}" in world.h1.sh("ip", "route", "show", "proto", str(PROTO))
    assert f"{SHOP1} via {world.h1.host.ip}" in world.h2.sh("ip", "route", "show", "proto", str(PROTO))
    assert BLOG1 not in world.h2.sh("ip", "route", "show", "proto", str(PROTO))  # host2 has no blog block


def test_service_names_resolve_cluster_wide_through_the_node_resolver(world: World) -> None:
    assert world.shop1.tcp("api") == "shop2"
    assert world.shop2.tcp("web") == "shop1"
    code, out = world.shop1.sh("nslookup api")
    assert code == 0 and world.shop2.ip in out


def test_other_names_are_forwarded_upstream(world: World) -> None:
    code, out = world.shop1.sh("nslookup outside.test")
    assert code == 0 and "192.0.2.7" in out


def test_another_applications_names_are_not_answered(world: World) -> None:
    _, out = world.blog1.sh("nslookup api")
    assert world.shop2.ip not in out
    code, out = world.blog1.sh("nslookup blog")
    assert code == 0 and world.blog1.ip in out


def test_udp_across_nodes_by_address_and_name(world: World) -> None:
    assert world.shop1.udp(world.shop2.ip) == "shop2:ping"
    assert world.shop1.udp("api") == "shop2:ping"
    assert world.shop2.udp(world.shop1.ip) == "shop1:ping"


def test_another_application_cannot_connect_across_nodes(world: World) -> None:
    assert world.blog1.tcp(world.shop2.ip) == ""
    assert world.shop1.tcp(world.shop2.ip) == "shop2"  # the same address and port, allowed
    assert world.blog1.udp(world.shop2.ip) == ""
    assert world.shop1.udp(world.shop2.ip) == "shop2:ping"


def test_another_application_cannot_connect_on_the_same_node(world: World) -> None:
    assert world.blog1.tcp(world.shop1.ip) == ""
    assert world.shop2.tcp(world.shop1.ip) == "shop1"  # the same address and port, allowed


def test_a_published_port_still_works_through_dnat(world: World) -> None:
    assert world.blog1.tcp(world.shop2.ip) == ""  # not by its address...
    assert world.blog1.tcp(world.h2.host.ip, port=18080) == "shop2"  # ...but by its published port


def test_the_nat_jump_is_put_back_above_a_new_networks_masquerade(world: World) -> None:
    nat = Names(CLUSTER).nat_chain
    first = world.h1.sh("iptables", "-t", "nat", "-S", "POSTROUTING").splitlines()[1]
    assert first.endswith(f"-j {nat}")
    world.h1.network("fab-extra", EXTRA)  # Docker inserts its MASQUERADE rule on top
    first = world.h1.sh("iptables", "-t", "nat", "-S", "POSTROUTING").splitlines()[1]
    assert "MASQUERADE" in first and EXTRA in first
    assert world.h1.send("created") == "created"
    first = world.h1.sh("iptables", "-t", "nat", "-S", "POSTROUTING").splitlines()[1]
    assert first.endswith(f"-j {nat}")


def _replies_counter(node: Node) -> int:
    """Packets through the chain's first rule (ESTABLISHED): a rewrite of the chain resets it."""
    chain = Names(CLUSTER).filter_chain
    line = next(x for x in node.sh("iptables-save", "-c", "-t", "filter").splitlines()
                if f"-A {chain} " in x and "RELATED,ESTABLISHED" in x)
    return int(line.split("]")[0].strip("[").split(":")[0])


def test_applying_the_same_map_again_writes_nothing(world: World) -> None:
    assert world.shop1.tcp(world.shop2.ip) == "shop2"
    before = _replies_counter(world.h1)
    m1, _ = world.maps(2)
    world.h1.apply(m1)
    assert _replies_counter(world.h1) >= before > 0


def test_removing_a_block_removes_its_route_rules_and_name_then_an_empty_map_removes_all(world: World) -> None:
    names = Names(CLUSTER)
    assert world.shop1.tcp(world.shop2.ip) == "shop2"
    m1, m2 = world.maps(3, with_host2=False)  # host2 left shop: its block goes
    world.h1.apply(m1)
    world.h2.apply(m2)
    assert SHOP2 not in world.h1.sh("ip", "route", "show", "proto", str(PROTO))
    assert SHOP2 not in world.h1.sh("ipset", "list")
    assert world.shop1.tcp(world.shop2.ip) == ""
    _, out = world.shop1.sh("nslookup api")
    assert world.shop2.ip not in out
    # host2's map is empty: everything of this cluster is gone there
    assert world.h2.sh("ip", "route", "show", "proto", str(PROTO)) == ""
    assert names.filter_chain not in world.h2.sh("iptables-save")
    assert names.set_prefix not in world.h2.sh("ipset", "list", "-n")
    # and on host1 when its map empties too
    world.h1.apply(apb.NetworkMap(cluster=CLUSTER, version=4, pod_cidr=POD))
    saved = world.h1.sh("iptables-save")
    assert names.filter_chain not in saved and names.nat_chain not in saved
    assert names.set_prefix not in world.h1.sh("ipset", "list", "-n")
    assert world.h1.sh("ip", "route", "show", "proto", str(PROTO)) == ""
