"""Several networks of one application, across hosts, end to end (issue 11): each network is
isolated from the others, a service on two reaches both, two applications share a cluster
network on purpose, and an internal network has no egress. The probes are those of
test_networks.py (net_probe.py)."""

from __future__ import annotations

import contextlib
import socket
import threading
import uuid
from collections.abc import Iterator

import pytest

from ccs.v1 import resources_pb2 as pb

from .conftest import BRIDGE_IP, Cluster3
from .net_probe import SERVE, app, hostname, lookup, one_live, sh, tcp, udp

pytestmark = [pytest.mark.slow, pytest.mark.docker]


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

