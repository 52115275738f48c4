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

import pytest

from nodeagent.network.plan import NetKey
from nodeagent.network.rules import Names

from .conftest import Cluster3
from .net_probe import app, ccs_routes, hostname, intruder, lookup, one_live, tcp, udp

pytestmark = [pytest.mark.slow, pytest.mark.docker]

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
