"""The resolver's answers from the map: scoped by the asking container's block. Pure."""

from __future__ import annotations

from ipaddress import IPv4Address

import dns.flags
import dns.message
import dns.rcode
import dns.rdatatype
import dns.rrset
import pytest

from ccs.v1 import agent_pb2 as apb
from nodeagent.network.names import TTL, NameTable, answer, failure, parse_resolv_conf, to_wire, udp_limit
from nodeagent.network.plan import NetKey, plan_fabric


def table() -> NameTable:
    m = apb.NetworkMap(cluster="prod", version=1, pod_cidr="10.128.0.0/9", networks=[
        apb.AppNetwork(application="shop", network="default", blocks=[
            apb.NetworkBlock(node="n1", node_address="10.0.0.1", subnet="10.128.0.0/28"),
            apb.NetworkBlock(node="n2", node_address="10.0.0.2", subnet="10.128.0.16/28")],
            names=[apb.NetworkName(name="db", addresses=["10.128.0.18", "10.128.0.3"]),
                   apb.NetworkName(name="starting", addresses=[])]),
        apb.AppNetwork(application="blog", network="default", blocks=[
            apb.NetworkBlock(node="n1", node_address="10.0.0.1", subnet="10.128.0.32/28")],
            names=[apb.NetworkName(name="web", addresses=["10.128.0.34"])]),
    ])
    return NameTable.from_plan(plan_fabric(m, node="n1"))


def ask(name: str, source: str, rdtype: str = "A", *, rotate: int = 0) -> dns.message.Message | None:
    return answer(dns.message.make_query(name, rdtype), source, table(), rotate=rotate)


def addresses(response: dns.message.Message | None) -> list[str]:
    assert response is not None
    return [r.address for rrset in response.answer for r in rrset]


def test_the_source_block_selects_the_network() -> None:
    t = table()
    assert t.network_of("10.128.0.5") == NetKey("shop", "default")
    assert t.network_of("10.128.0.40") == NetKey("blog", "default")
    assert t.network_of("10.128.0.18") is None  # another node's block: never a local asker
    assert t.network_of("127.0.0.1") is None and t.network_of("fe80::1") is None


def test_a_service_name_answers_every_ready_address_with_a_short_ttl() -> None:
    response = ask("db", "10.128.0.5")
    assert addresses(response) == ["10.128.0.3", "10.128.0.18"]
    assert response is not None and response.answer[0].ttl == TTL == 1
    assert response.flags & dns.flags.AA and response.rcode() == dns.rcode.NOERROR


def test_names_match_case_insensitively_with_or_without_the_root_dot() -> None:
    assert addresses(ask("DB.", "10.128.0.5")) == ["10.128.0.3", "10.128.0.18"]


def test_answers_rotate_per_query() -> None:
    assert addresses(ask("db", "10.128.0.5", rotate=1)) == ["10.128.0.18", "10.128.0.3"]


def test_another_applications_names_are_forwarded_not_answered() -> None:
    assert ask("web", "10.128.0.5") is None  # shop asks for blog's name
    assert addresses(ask("web", "10.128.0.33")) == ["10.128.0.34"]
    assert ask("db", "10.128.0.33") is None


@pytest.mark.parametrize("source", ["10.77.0.11", "169.254.20.53", "10.128.0.18"])
def test_unknown_sources_are_forwarded(source: str) -> None:
    assert ask("db", source) is None


def test_other_names_are_forwarded() -> None:
    assert ask("example.com", "10.128.0.5") is None


@pytest.mark.parametrize("rdtype", ["AAAA", "TXT", "MX"])
def test_a_known_name_of_another_type_is_an_empty_noerror(rdtype: str) -> None:
    response = ask("db", "10.128.0.5", rdtype)
    assert response is not None and response.rcode() == dns.rcode.NOERROR and response.answer == []


def test_a_known_name_without_ready_containers_is_an_empty_noerror() -> None:
    response = ask("starting", "10.128.0.5")
    assert response is not None and response.rcode() == dns.rcode.NOERROR and response.answer == []


def test_a_response_too_big_for_udp_is_truncated_so_the_client_uses_tcp() -> None:
    query = dns.message.make_query("db", "A")
    response = dns.message.make_response(query)
    response.answer.append(
        dns.rrset.from_text_list("db.", 1, "IN", "A", [f"10.128.{i // 250}.{i % 250 + 1}" for i in range(200)])
    )
    wire = to_wire(response, udp_limit(query))
    small = dns.message.from_wire(wire)
    assert len(wire) <= 512 and small.flags & dns.flags.TC and small.answer == [] and small.id == query.id
    assert len(to_wire(response, 65535)) > 512


def test_udp_limit_follows_edns() -> None:
    assert udp_limit(dns.message.make_query("db", "A")) == 512
    assert udp_limit(dns.message.make_query("db", "A", use_edns=0, payload=1232)) == 1232


def test_failure_is_servfail_never_nxdomain() -> None:
    query = dns.message.make_query("example.com", "A")
    assert failure(query).rcode() == dns.rcode.SERVFAIL and failure(query).id == query.id


def test_resolv_conf_nameservers_in_order_without_the_resolver_itself() -> None:
    text = "# generated\nsearch example.com\nnameserver 10.0.0.2\nnameserver 169.254.20.53 # us\n" \
           "nameserver 127.0.0.53\nnameserver 10.0.0.2\noptions ndots:1\n"
    assert parse_resolv_conf(text, skip=["169.254.20.53"]) == ["10.0.0.2", "127.0.0.53"]


def multi() -> NameTable:
    """shop on n1: api on front and back; web on front; db on back; and pub, joining the cluster
    network "team" with blog's net (blog's api and a db of its own)."""
    m = apb.NetworkMap(cluster="prod", version=1, pod_cidr="10.128.0.0/9", networks=[
        apb.AppNetwork(application="blog", network="net", shared="team", blocks=[
            apb.NetworkBlock(node="n2", node_address="10.0.0.2", subnet="10.128.3.0/28")],
            names=[apb.NetworkName(name="api", addresses=["10.128.3.2"]),
                   apb.NetworkName(name="db", addresses=["10.128.3.3"])]),
        apb.AppNetwork(application="shop", network="back", blocks=[
            apb.NetworkBlock(node="n1", node_address="10.0.0.1", subnet="10.128.1.0/28")],
            names=[apb.NetworkName(name="api", addresses=["10.128.1.2"]),
                   apb.NetworkName(name="db", addresses=["10.128.1.3"])]),
        apb.AppNetwork(application="shop", network="front", blocks=[
            apb.NetworkBlock(node="n1", node_address="10.0.0.1", subnet="10.128.0.0/28")],
            names=[apb.NetworkName(name="api", addresses=["10.128.0.2"]),
                   apb.NetworkName(name="web", addresses=["10.128.0.3"])]),
        apb.AppNetwork(application="shop", network="pub", shared="team", blocks=[
            apb.NetworkBlock(node="n1", node_address="10.0.0.1", subnet="10.128.2.0/28")],
            names=[apb.NetworkName(name="web", addresses=["10.128.2.3"])]),
    ])
    return NameTable.from_plan(plan_fabric(m, node="n1"))


def containers(source: str) -> list[NetKey] | None:
    """The agent's view: api (front 10.128.0.2, back 10.128.1.2); web (front .0.3, pub .2.3)."""
    return {"10.128.0.2": [NetKey("shop", "front"), NetKey("shop", "back")],
            "10.128.1.2": [NetKey("shop", "front"), NetKey("shop", "back")],
            "10.128.0.3": [NetKey("shop", "front"), NetKey("shop", "pub")],
            "10.128.2.3": [NetKey("shop", "front"), NetKey("shop", "pub")]}.get(source)


def test_a_container_on_several_networks_resolves_the_names_of_each_whichever_address_asks() -> None:
    """api is on front and back: it asks from its default route's address (front's here), and
    still resolves db, a name of back only; front-only web does not."""
    t = multi()
    for source in ("10.128.0.2", "10.128.1.2"):
        assert t.lookup(source, "db", containers) == (IPv4Address("10.128.1.3"),)
        assert t.lookup(source, "api", containers) == (IPv4Address("10.128.0.2"), IPv4Address("10.128.1.2"))
    # web is on front and pub, not back: never shop's db (blog's, through the shared network, below)
    assert IPv4Address("10.128.1.3") not in (t.lookup("10.128.0.3", "db", containers) or ())
    # Without the agent's view only the source's block speaks: front's names.
    assert t.lookup("10.128.0.2", "db") is None and t.lookup("10.128.0.2", "web") == (IPv4Address("10.128.0.3"),)


def test_a_shared_network_answers_the_other_applications_names_the_asker_s_own_win() -> None:
    t = multi()
    assert t.lookup("10.128.0.3", "api", containers) == (IPv4Address("10.128.0.2"),)  # shop's own api
    assert t.lookup("10.128.0.3", "api.blog", containers) == (IPv4Address("10.128.3.2"),)  # blog's, by name
    assert t.lookup("10.128.0.3", "db", containers) == (IPv4Address("10.128.3.3"),)  # shop's db is on back only
    assert t.lookup("10.128.0.3", "web.shop", containers) == (IPv4Address("10.128.2.3"),)
    assert t.lookup("10.128.0.2", "api.blog", containers) is None  # api is not on the shared network
    assert t.lookup("10.128.0.3", "nothing.blog", containers) is None
