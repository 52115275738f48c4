"""Compose networks in the parser: each key has its effect on the NetworkDef (and through it on the
network map and the nodes), or is refused naming its field and what to do instead."""

from __future__ import annotations

import textwrap

import pytest
from google.protobuf import json_format

from controlplane.compose import TemplateError, parse_template
from controlplane.compose.template import ParsedTemplate


def parse(text: str) -> ParsedTemplate:
    return parse_template(textwrap.dedent(text), env={}, files={}, app_name="app")


def errors(text: str) -> list[str]:
    with pytest.raises(TemplateError) as info:
        parse(text)
    return [str(e) for e in info.value.errors]


def defs(parsed: ParsedTemplate) -> list[dict[str, object]]:
    return [json_format.MessageToDict(n, preserving_proto_field_name=True) for n in parsed.networks]


def test_each_network_and_each_services_networks_are_kept_in_template_order() -> None:
    """A service lists the networks it joins (with its aliases there); one that lists none is
    on "default" (an empty list in its spec, as stored before per-network blocks)."""
    parsed = parse("""
        services:
          web: {image: w, networks: [front, shared]}
          api: {image: a, networks: {back: {aliases: [service]}, front: {}}}
          cron: {image: c}
        networks:
          front: {driver: overlay}
          back: {driver: bridge, internal: true, attachable: false, enable_ipv4: true, enable_ipv6: false}
          shared: {external: true, name: team}
        """)
    assert defs(parsed) == [
        {"name": "front", "driver": "overlay"},
        {"name": "back", "driver": "bridge", "internal": True},
        {"name": "shared", "external": True, "external_name": "team"},
    ]
    nets = {name: [(n.name, list(n.aliases)) for n in spec.networks] for name, spec in parsed.services.items()}
    assert nets == {"web": [("front", []), ("shared", [])], "api": [("back", ["service"]), ("front", [])],
                    "cron": []}


def test_an_external_network_joins_the_cluster_network_named_by_name_or_by_its_key() -> None:
    parsed = parse("""
        services: {web: {image: w, networks: [a, b, c, default]}}
        networks:
          a: {external: true}
          b: {external: {name: legacy}}
          c: {external: true, name: c2}
          default: {external: true, name: everyone}
        """)
    assert [(n.name, n.external, n.external_name) for n in parsed.networks] == [
        ("a", True, "a"), ("b", True, "legacy"), ("c", True, "c2"), ("default", True, "everyone")]


@pytest.mark.parametrize(("case", "network", "expected"), [
    ("driver macvlan", "{driver: macvlan}",
     "networks.n.driver: 'macvlan' is not supported: use bridge or overlay (both mean the ccs network across "
     "the nodes), or leave it out"),
    ("driver host", "{driver: host}", "networks.n.driver: 'host' is not supported"),
    ("name without external", "{name: fixed}", "networks.n.name: is only for external networks"),
    ("attachable", "{attachable: true}", "networks.n.attachable: true is not supported"),
    ("ipv6", "{enable_ipv6: true}", "networks.n.enable_ipv6: true is not supported: ccs networks are IPv4 only"),
    ("ipv4 off", "{enable_ipv4: false}", "networks.n.enable_ipv4: false is not supported"),
    ("labels", "{labels: {a: b}}", "networks.n.labels: is not supported: ccs makes each network's bridges"),
    ("driver_opts", "{driver_opts: {com.docker.network.driver.mtu: '1400'}}",
     "networks.n.driver_opts: is not supported: the agents make the bridges"),
    ("ipam", "{ipam: {config: [{subnet: 10.1.0.0/24}]}}", "networks.n.ipam: is not supported: ccs allocates"),
    ("external with driver", "{external: true, driver: bridge}",
     "networks.n.driver: cannot be set on an external network: it is the cluster network's (ccs network create)"),
    ("external with internal", "{external: true, internal: true}", "networks.n.internal: cannot be set on an external"),
    ("external names disagree", "{external: {name: a}, name: b}", "networks.n.external.name: disagrees with name"),
])
def test_what_ccs_cannot_honour_is_refused_naming_the_field(case: str, network: str, expected: str) -> None:
    found = errors(f"services: {{web: {{image: w, networks: [n]}}}}\nnetworks:\n  n: {network}\n")
    assert any(e.startswith(expected) for e in found), found


def test_a_refusal_says_what_to_do_instead() -> None:
    (error,) = errors("services: {web: {image: w, networks: [n]}}\nnetworks: {n: {attachable: true}}\n")
    assert "ccs network create NAME" in error and "external: true" in error
    (error,) = errors("services: {web: {image: w, networks: [n]}}\nnetworks: {n: {name: x}}\n")
    assert "ccs network create NAME" in error
