"""The probes of the cross-host network tests: a test application and an intruder whose
containers answer TCP 7000 and UDP 7001 with their hostname, and ways to ask from inside a
container who answers, what a name resolves to, and which routes the agent installed."""

from __future__ import annotations

import ipaddress
import json

from ccs.v1 import resources_pb2 as pb
from nodeagent.network.routes import PROTO

from .conftest import Cluster3

SERVE = '["sh", "-c", "nc -ll -p 7000 -e /bin/hostname & udpecho serve 7001 & wait"]'
ROUTE_PROTO = str(PROTO)  # the agent's route protocol


def app(db_where: str, client_where: str) -> str:
    return f"""
services:
  db:
    image: local/netcheck:1
    command: {SERVE}
    networks:
      default: {{aliases: [database]}}
    deploy:
      restart_policy: {{condition: any, delay: 1s}}
      placement: {{constraints: ["node.labels.nettest=={db_where}"]}}
  client:
    image: local/netcheck:1
    command: {SERVE}
    deploy:
      placement: {{constraints: ["node.labels.nettest=={client_where}"]}}
"""


def intruder(where: str) -> str:
    return f"""
services:
  intruder:
    image: local/netcheck:1
    command: {SERVE}
    deploy:
      placement: {{constraints: ["node.labels.nettest=={where}"]}}
"""


def one_live(c: Cluster3, app_name: str, service: str, node: str) -> pb.Container:
    def found() -> pb.Container | None:
        live = c.live(app_name, service)
        ok = [x for x in live if x.node == node and x.status.addresses.get("default")]
        return ok[0] if len(live) == 1 and ok else None

    got = c.wait_for(f"{app_name}/{service} running on {node} with an address", found, timeout=90)
    assert got is not None
    return got


def sh(c: Cluster3, x: pb.Container, script: str, check: bool = False) -> tuple[int, str]:
    """Run ``script`` in container ``x`` (on its host's engine): exit code and output."""
    res = c.host(int(x.node.removeprefix("host"))).docker(
        "exec", x.status.docker_id, "sh", "-c", script, check=check)
    return res.returncode, (res.stdout + res.stderr).strip()


def tcp(c: Cluster3, x: pb.Container, target: str) -> str:
    """Who answered a TCP connection from ``x`` to ``target``:7000 (its hostname), "" if nobody."""
    return sh(c, x, f"nc -w 3 {target} 7000 </dev/null 2>/dev/null")[1]


def udp(c: Cluster3, x: pb.Container, target: str) -> str:
    code, out = sh(c, x, f"udpecho send {target} 7001 ping")
    return out if code == 0 else ""


def hostname(c: Cluster3, x: pb.Container) -> str:
    """The container's hostname, which its servers answer with."""
    (info,) = json.loads(c.host(int(x.node.removeprefix("host"))).docker("inspect", x.status.docker_id).stdout)
    return str(info["Config"]["Hostname"])


def lookup(c: Cluster3, x: pb.Container, name: str) -> list[str]:
    """The IPv4 addresses ``name`` resolves to inside ``x`` (busybox nslookup through the
    engine's embedded DNS, which forwards service names to the node resolver)."""
    _, out = sh(c, x, f"nslookup {name} 2>&1")
    found = []
    after_name = False
    for line in out.splitlines():
        if line.startswith("Name:"):
            after_name = True
        elif after_name and line.startswith("Address"):
            text = line.split(":", 1)[1].strip().split()[0]
            try:
                found.append(str(ipaddress.IPv4Address(text)))
            except ValueError:
                continue
    return sorted(found)


def ccs_routes(c: Cluster3, host: str) -> str:
    return c.host(int(host.removeprefix("host"))).in_netns(["ip", "route", "show", "proto", ROUTE_PROTO]).stdout
