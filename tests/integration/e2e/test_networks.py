"""Applications across hosts, end to end: ccs-server, three agents, real engines, routes, iptables
and the node resolvers (issue 11).

One application's services reach each other by name on any host, over TCP and UDP; another
application's container is refused (every refusal is paired, in the same test, with a successful
connection to the same address and port from an allowed container); a host's death moves a
service and its name follows it; a returning host leaves no stale route and no duplicate answer;
a removed application leaves nothing behind on any host.

Placement is pinned with node labels (``ccs node label``), so each case puts its containers on the
hosts it is about. ``local/netcheck:1`` serves TCP 7000 (``nc -e hostname``: the answer names who
answered) and UDP 7001 (``udpecho``, the same).
"""

from __future__ import annotations

import contextlib
import ipaddress
import json
import socket
import threading
import uuid
from collections.abc import Iterator

import pytest

from ccs.v1 import resources_pb2 as pb
from nodeagent.network.plan import NetKey
from nodeagent.network.routes import PROTO
from nodeagent.network.rules import Names

from .conftest import BRIDGE_IP, Cluster3

pytestmark = [pytest.mark.slow, pytest.mark.docker]

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


@pytest.fixture
def labelled(cluster3: Cluster3) -> Iterator[Cluster3]:
    """host1 -> nettest=a, host2 -> nettest=b, host3 -> nettest=c; removed afterwards."""
    c = cluster3
    for host, value in (("host1", "a"), ("host2", "b"), ("host3", "c")):
        c.ccs("node", "label", "-c", c.name, host, f"nettest={value}")
    yield c
    for host in c.host_names:
        c.ccs("node", "label", "-c", c.name, host, "nettest=", check=False)


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


def test_services_reach_each_other_by_name_across_hosts_and_other_apps_are_refused(
    labelled: Cluster3, app_name: str
) -> None:
    c = labelled
    c.deploy(app_name, app(db_where="b", client_where="a"))
    db = one_live(c, app_name, "db", "host2")
    client = one_live(c, app_name, "client", "host1")
    db_ip, db_name = db.status.addresses["default"], hostname(c, db)

    # By name and by alias, TCP and UDP, from host1 to host2. The path is there once host2 has
    # the map that holds host1's new block (its route back and its firewall set): waited for,
    # not assumed, since a block is new to every other node when an app first lands on a node.
    c.wait_for("the client resolves db", lambda: lookup(c, client, "db") == [db_ip], timeout=30)
    c.wait_for("a TCP path from host1's client to db on host2", lambda: tcp(c, client, "db") == db_name, timeout=60)
    assert lookup(c, client, "database") == [db_ip]
    # The resolver takes a new map at once, the routes and rules a moment later (iptables on a
    # busy host): wait for the first connection, then expect every one.
    c.wait_for("the client reaches db", lambda: tcp(c, client, "db") == db_name, timeout=30)
    assert udp(c, client, "database") == f"{db_name}:ping"
    # And back, from host2 to host1.
    assert tcp(c, db, "client") == hostname(c, client)

    # Another application, on the client's host and on the db's host.
    other = f"{app_name}-x"
    try:
        c.deploy(other, intruder("a"))
        c.deploy(f"{other}2", intruder("b"))
        across = one_live(c, other, "intruder", "host1")
        within = one_live(c, f"{other}2", "intruder", "host2")
        for stranger in (across, within):
            assert tcp(c, stranger, db_ip) == "", f"{stranger.node}: another app connected to db by address"
            assert udp(c, stranger, db_ip) == "", f"{stranger.node}: another app reached db over UDP"
            assert db_ip not in lookup(c, stranger, "db"), "another app's resolver answered our name"
            # Paired, in the same run: the same address and port from an allowed container.
            assert tcp(c, client, db_ip) == db_name
            assert udp(c, client, db_ip) == f"{db_name}:ping"
        # The strangers themselves are reachable within their own application only.
        assert tcp(c, db, across.status.addresses["default"]) == ""
    finally:
        for name in (other, f"{other}2"):
            c.ccs("app", "rm", "-c", c.name, name, check=False)

    # `ccs service get` shows each container's address on the application network.
    shown = c.ccs_json("service", "get", "-c", c.name, f"{app_name}/db", "-o", "json")
    assert [a["address"] for a in shown["status"]["addresses"]] == [db_ip]


def test_a_service_moved_off_a_dead_host_is_found_by_name_and_the_host_returns_clean(
    labelled: Cluster3, app_name: str
) -> None:
    c = labelled
    c.deploy(app_name, app(db_where="b", client_where="a"))
    db = one_live(c, app_name, "db", "host2")
    client = one_live(c, app_name, "client", "host1")
    old_block = db.subnets["default"]
    c.wait_for("host1 routes db's block via host2",
               lambda: f"{old_block} via {c.host(2).ip}" in ccs_routes(c, "host1"), timeout=30)
    c.wait_networks_settled("host2", app_name)  # a crash mid `network rm` bricks dockerd (moby#45057)
    c.ccs("node", "label", "-c", c.name, "host3", "nettest=b")  # db may now run on host3 too

    c.host(2).kill()
    try:
        moved = one_live(c, app_name, "db", "host3")
        new_ip = moved.status.addresses["default"]
        c.wait_for("the client resolves db at its new address",
                   lambda: lookup(c, client, "db") == [new_ip], timeout=30)
        c.wait_for("a TCP path to db on host3", lambda: tcp(c, client, "db") == hostname(c, moved), timeout=60)
        assert tcp(c, client, "db") == hostname(c, moved)
        assert udp(c, client, "db") == f"{hostname(c, moved)}:ping"
    finally:
        c.host(2).start()
    c.wait_nodes_ready()

    # host2 is back: its old container is removed, its block freed, and no host routes it any more.
    def clean() -> bool:
        for host in c.host_names:
            routes = ccs_routes(c, host)
            assert old_block not in routes, f"{host} still routes the old block: {routes}"
        assert not c.docker_containers("host2", app_name, "db"), "the old db runs again on host2"
        return True

    c.wait_for("the old block gone from every host's routes", clean, timeout=60)
    assert lookup(c, client, "db") == [new_ip], "a duplicate answer after host2 returned"
    assert tcp(c, client, "db") == hostname(c, moved)


def test_a_removed_application_leaves_no_route_rule_set_or_name_on_any_host(
    labelled: Cluster3, app_name: str
) -> None:
    c = labelled
    c.deploy(app_name, app(db_where="b", client_where="a"))
    db = one_live(c, app_name, "db", "host2")
    client = one_live(c, app_name, "client", "host1")
    blocks = {db.subnets["default"], client.subnets["default"]}
    c.wait_for("host1 routes db's block", lambda: db.subnets["default"] in ccs_routes(c, "host1"), timeout=30)
    app_set = Names(c.name).network_set(NetKey(app_name, "default"))
    assert app_set in c.host(1).in_netns(["ipset", "list", "-n"]).stdout.split()

    # A second application stays on host1: its resolver keeps serving while ours is removed.
    keeper = f"{app_name}-k"
    c.deploy(keeper, intruder("a"))
    witness = one_live(c, keeper, "intruder", "host1")
    c.ccs("app", "rm", "-c", c.name, app_name)
    try:
        def gone() -> bool:
            for host in c.host_names:
                h = c.host(int(host[-1]))
                routes = ccs_routes(c, host)
                rules = h.in_netns(["iptables-save"]).stdout
                for block in blocks:
                    assert block not in routes, f"{host} still routes {block}"
                    assert block not in rules, f"{host} still has a rule for {block}"
                assert app_set not in h.in_netns(["ipset", "list", "-n"]).stdout.split(), f"{host} keeps {app_set}"
            return True

        c.wait_for("the application's routes, rules and sets gone from every host", gone, timeout=60)
        assert lookup(c, witness, "db") == [], "the resolver still answers the removed app's name"
        assert not c.api(lambda cl: cl.containers.list(c.name, application=app_name))
    finally:
        c.ccs("app", "rm", "-c", c.name, keeper, check=False)


# ------------------------------------------------------------------ several networks (issue 11)


def placed(where: str) -> str:
    return f'{{constraints: ["node.labels.nettest=={where}"]}}'


def front_back() -> str:
    """web (front) on host1; api (front and back) on host2; db (back) on host3; cache (back) on
    host1, beside web."""
    return f"""
services:
  web:
    image: local/netcheck:1
    command: {SERVE}
    networks: [front]
    deploy: {{placement: {placed("a")}}}
  api:
    image: local/netcheck:1
    command: {SERVE}
    networks:
      front: {{}}
      back: {{aliases: [service]}}
    deploy: {{placement: {placed("b")}}}
  db:
    image: local/netcheck:1
    command: {SERVE}
    networks: [back]
    deploy: {{placement: {placed("c")}}}
  cache:
    image: local/netcheck:1
    command: {SERVE}
    networks: [back]
    deploy: {{placement: {placed("a")}}}
networks:
  front: {{driver: overlay}}
  back: {{driver: bridge}}
"""


def live_on(c: Cluster3, app_name: str, service: str, node: str, *networks: str) -> pb.Container:
    """The one live container of ``service``, on ``node``, with an address on each network."""
    def found() -> pb.Container | None:
        live = c.live(app_name, service)
        ok = [x for x in live if x.node == node and all(x.status.addresses.get(n) for n in networks)]
        return ok[0] if len(live) == 1 and ok else None

    got = c.wait_for(f"{app_name}/{service} running on {node} on {', '.join(networks)}", found, timeout=90)
    assert got is not None
    return got


def test_front_and_back_are_isolated_across_hosts_and_a_service_on_both_reaches_both(
    labelled: Cluster3, app_name: str
) -> None:
    """Two Compose networks of one application are two networks: web (front) cannot reach db or
    cache (back), across hosts or on its own host, by address or by name; api, on both, reaches
    every one of them by name and is reached from both sides. Every refusal is paired with a
    connection to the same address and port from api."""
    c = labelled
    c.deploy(app_name, front_back())
    web = live_on(c, app_name, "web", "host1", "front")
    api = live_on(c, app_name, "api", "host2", "front", "back")
    db = live_on(c, app_name, "db", "host3", "back")
    cache = live_on(c, app_name, "cache", "host1", "back")
    assert set(api.status.addresses) == {"front", "back"} and set(web.status.addresses) == {"front"}
    assert web.subnets["front"] != cache.subnets["back"], "front and back share a block on host1"
    db_ip, cache_ip = db.status.addresses["back"], cache.status.addresses["back"]
    web_ip = web.status.addresses["front"]

    # api, on both networks, resolves and reaches every service, across hosts, whichever of its
    # addresses its packets and its DNS queries leave from.
    c.wait_for("api resolves db (back) and web (front)",
               lambda: lookup(c, api, "db") == [db_ip] and lookup(c, api, "web") == [web_ip], timeout=30)
    c.wait_for("every host applied the map", lambda: tcp(c, api, "db") == hostname(c, db), timeout=30)
    assert udp(c, api, "db") == f"{hostname(c, db)}:ping"
    assert tcp(c, api, "cache") == hostname(c, cache)
    assert tcp(c, api, "web") == hostname(c, web)
    # and is reached from both sides, by its name and its alias on back, over TCP and UDP (a UDP
    # answer leaves api from its address on the asker's network: the routes inside it).
    assert tcp(c, web, "api") == hostname(c, api)
    assert udp(c, web, "api") == f"{hostname(c, api)}:ping"
    assert udp(c, db, "api") == f"{hostname(c, api)}:ping"
    assert tcp(c, db, "api") == hostname(c, api)
    assert tcp(c, db, "service") == hostname(c, api)
    assert lookup(c, web, "service") == [], "an alias on back answered on front"

    # web (front only) neither resolves nor reaches back's containers: db across hosts, cache
    # on its own host; each refusal paired with api reaching the same address and port.
    assert lookup(c, web, "db") == [] and lookup(c, web, "cache") == []
    for target, who in ((db_ip, db), (cache_ip, cache)):
        assert tcp(c, web, target) == "", f"web (front) connected to {who.service} (back) at {target}"
        assert udp(c, web, target) == "", f"web (front) reached {who.service} (back) over UDP"
        assert tcp(c, api, target) == hostname(c, who)
        assert udp(c, api, target) == f"{hostname(c, who)}:ping"
    # and back's containers do not reach web, paired with api again.
    assert tcp(c, db, web_ip) == "" and tcp(c, cache, web_ip) == ""
    assert tcp(c, api, web_ip) == hostname(c, web)

    # `ccs service get` lists api's address on each network.
    shown = c.ccs_json("service", "get", "-c", c.name, f"{app_name}/api", "-o", "json")
    assert sorted((a["network"], a["address"]) for a in shown["status"]["addresses"]) == sorted(
        api.status.addresses.items())


def sharing(network: str, where: str, service: str) -> str:
    """An application with ``service`` on its own default network and on the cluster network
    ``network`` (its Compose key ``shared``), and ``private`` on its default network only."""
    return f"""
services:
  {service}:
    image: local/netcheck:1
    command: {SERVE}
    networks: [default, shared]
    deploy: {{placement: {placed(where)}}}
  private:
    image: local/netcheck:1
    command: {SERVE}
    deploy: {{placement: {placed(where)}}}
networks:
  shared: {{external: true, name: {network}}}
"""


def test_two_applications_share_a_cluster_network_on_purpose(labelled: Cluster3, app_name: str) -> None:
    """`ccs network create` + `external: true`: the containers of two applications on the shared
    network reach each other by name (and by SERVICE.APPLICATION) across hosts; neither reaches
    the other's own network (paired with a container of that application reaching the same
    address and port). The network cannot be removed while they use it."""
    c = labelled
    net, other = f"{app_name}-net", f"{app_name}-b"
    c.ccs("network", "create", net, "-c", c.name)
    try:
        c.deploy(app_name, sharing(net, "a", "alpha"))
        c.deploy(other, sharing(net, "b", "beta"))
        alpha = live_on(c, app_name, "alpha", "host1", "default", "shared")
        beta = live_on(c, other, "beta", "host2", "default", "shared")
        a_private = live_on(c, app_name, "private", "host1", "default")
        b_private = live_on(c, other, "private", "host2", "default")

        # By name, both ways, across hosts, on the shared network.
        c.wait_for("alpha resolves beta", lambda: lookup(c, alpha, "beta") == [beta.status.addresses["shared"]],
                   timeout=30)
        assert lookup(c, alpha, f"beta.{other}") == [beta.status.addresses["shared"]]
        # host2 learns alpha's network (routes, sets) when beta's block appears there, and applies
        # it in the background: wait for the first connection, then expect every one.
        c.wait_for("alpha reaches beta", lambda: tcp(c, alpha, "beta") == hostname(c, beta), timeout=30)
        assert udp(c, alpha, "beta") == f"{hostname(c, beta)}:ping"
        assert tcp(c, beta, "alpha") == hostname(c, alpha)
        # Each application's own name wins: "private" is its own private service for each.
        assert lookup(c, alpha, "private") == [a_private.status.addresses["default"]]
        assert lookup(c, beta, "private") == [b_private.status.addresses["default"]]

        # Not each other's own networks: refused, paired with the owner's container.
        for stranger, target, owner in ((alpha, b_private, beta), (beta, a_private, alpha)):
            address = target.status.addresses["default"]
            assert tcp(c, stranger, address) == "", f"{stranger.application} reached {target.application}'s own network"
            assert udp(c, stranger, address) == ""
            assert tcp(c, owner, address) == hostname(c, target)
            assert udp(c, owner, address) == f"{hostname(c, target)}:ping"
        # alpha itself, on both networks, is reached on either of its addresses (each is a member
        # of the other network): the container is on the shared network, whichever address.
        assert tcp(c, beta, alpha.status.addresses["default"]) == hostname(c, alpha)

        res = c.ccs("network", "rm", net, "-c", c.name, check=False)
        assert res.returncode == 5 and f"used by application(s) {app_name}, {other}" in res.stderr
    finally:
        c.ccs("app", "rm", "-c", c.name, other, check=False)
        c.ccs("app", "rm", "-c", c.name, app_name, check=False)
        c.ccs("network", "rm", net, "-c", c.name, check=False)


@contextlib.contextmanager
def _listener(address: str) -> Iterator[tuple[int, str]]:
    """A TCP server on ``address`` (in the test's own namespace: the testbed's bridge) that
    answers every connection with a word of its own: (port, word)."""
    word = f"egress-{uuid.uuid4().hex[:8]}"
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((address, 0))
    sock.listen(16)
    sock.settimeout(0.2)
    stop = threading.Event()

    def serve() -> None:
        while not stop.is_set():
            try:
                conn, _ = sock.accept()
            except OSError:
                continue
            with conn:
                conn.sendall(f"{word}\n".encode())

    thread = threading.Thread(target=serve, name="egress-listener", daemon=True)
    thread.start()
    try:
        yield sock.getsockname()[1], word
    finally:
        stop.set()
        thread.join()
        sock.close()


def test_an_internal_network_has_no_egress(labelled: Cluster3, app_name: str) -> None:
    """A container on an `internal: true` network reaches its own network, across hosts, and
    nothing outside its blocks: not the testbed's bridge (the hosts' way out), not another
    application's block. Each refusal is paired, in the same run, with a connection to the same
    address and port from a container on a network with egress."""
    c = labelled
    c.deploy(app_name, f"""
services:
  locked:
    image: local/netcheck:1
    command: {SERVE}
    networks: [vault]
    deploy: {{placement: {placed("a")}}}
  keeper:
    image: local/netcheck:1
    command: {SERVE}
    networks: [vault]
    deploy: {{placement: {placed("b")}}}
  open:
    image: local/netcheck:1
    command: {SERVE}
    deploy: {{placement: {placed("a")}}}
networks:
  vault: {{internal: true}}
""")
    locked = live_on(c, app_name, "locked", "host1", "vault")
    keeper = live_on(c, app_name, "keeper", "host2", "vault")
    opened = live_on(c, app_name, "open", "host1", "default")
    # Within the internal network, across hosts, everything passes, by name too (and once it
    # does, both hosts hold the map, the internal network's rules included).
    c.wait_for("locked resolves keeper", lambda: lookup(c, locked, "keeper") == [keeper.status.addresses["vault"]],
               timeout=30)
    c.wait_for("locked reaches keeper", lambda: tcp(c, locked, "keeper") == hostname(c, keeper), timeout=30)
    assert udp(c, keeper, "locked") == f"{hostname(c, locked)}:ping"

    with _listener(BRIDGE_IP) as (port, word):
        probe = f"nc -w 3 {BRIDGE_IP} {port} </dev/null"
        assert sh(c, opened, probe) == (0, word), "the control: a network with egress reaches the bridge"
        assert word not in sh(c, locked, probe)[1], "a container on an internal network reached the bridge"
        assert sh(c, opened, probe) == (0, word), "paired, after the refusal"

    other = f"{app_name}-o"
    try:
        c.deploy(other, app(db_where="a", client_where="b"))  # another application: db on host1
        db = one_live(c, other, "db", "host1")
        client = one_live(c, other, "client", "host2")
        db_ip = db.status.addresses["default"]
        c.wait_for("the other application's client reaches its db",
                   lambda: tcp(c, client, db_ip) == hostname(c, db), timeout=30)
        assert tcp(c, locked, db_ip) == "", "a container on an internal network reached another app's block"
        assert udp(c, locked, db_ip) == ""
        assert tcp(c, client, db_ip) == hostname(c, db)  # paired: db's own application, across hosts
        assert udp(c, client, db_ip) == f"{hostname(c, db)}:ping"
    finally:
        c.ccs("app", "rm", "-c", c.name, other, check=False)

