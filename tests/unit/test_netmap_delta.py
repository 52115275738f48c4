"""Network map deltas (issue 15): what a delta carries, how the agent's ``MapBook`` applies it,
and that the map an agent holds after any sequence of deltas is the complete map
(``network_map``, the definition), version included."""

from __future__ import annotations

import random

import pytest

from ccs.v1 import agent_pb2
from controlplane.netmap import NetworkMaps, NodeMap, Part, complete, delta, network_map
from controlplane.netmap.delta import changes
from nodeagent.assignments import ChainBroken
from nodeagent.network.map_book import MapBook, MapChainBroken
from tests.unit.test_netmap import NODES, random_edits, settle, shop


def net(app: str, network: str = "default", *addresses: str) -> agent_pb2.AppNetwork:
    return agent_pb2.AppNetwork(application=app, network=network,
                                names=[agent_pb2.NetworkName(name="web", addresses=list(addresses))])


def node_map(*networks: agent_pb2.AppNetwork) -> NodeMap:
    return NodeMap.of("c1", "10.128.0.0/12", {(n.application, n.network): Part.of(n) for n in networks})


A1, A2 = net("a", "default", "10.128.0.2"), net("a", "default", "10.128.0.3")
B, C = net("b"), net("c", "back")

# (case, map the agent holds, the new map, networks the delta carries, keys it removes)
CASES = [
    ("same", [A1, B], [A1, B], [], []),
    ("one changed", [A1, B], [A2, B], [("a", "default")], []),
    ("one new", [A1], [A1, C], [("c", "back")], []),
    ("one gone", [A1, B], [B], [], [("a", "default")]),
    ("all at once", [A1, B], [A2, C], [("a", "default"), ("c", "back")], [("b", "default")]),
    ("from nothing", [], [B, A1], [("a", "default"), ("b", "default")], []),
    ("to nothing", [A1, C], [], [], [("a", "default"), ("c", "back")]),
]


@pytest.mark.parametrize(("held", "target", "carried", "removed"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_a_delta_carries_the_changed_and_new_networks_and_names_those_gone(
    held: list[agent_pb2.AppNetwork], target: list[agent_pb2.AppNetwork],
    carried: list[tuple[str, str]], removed: list[tuple[str, str]],
) -> None:
    before, after = node_map(*held), node_map(*target)
    assert changes(before.held, after) == (carried, removed)
    d = delta(before.version, before.held, after)
    assert (d.base_version, d.version) == (before.version, after.version)
    assert [(n.application, n.network) for n in d.networks] == carried
    assert [(n.application, n.network) for n in d.removed] == removed
    book = MapBook()
    book.apply(complete(before))
    assert book.apply(d) == complete(after)


def test_the_version_does_not_depend_on_the_order_of_networks_and_follows_any_change() -> None:
    assert node_map(A1, B, C).version == node_map(C, A1, B).version
    assert len({node_map(A1, B).version, node_map(A2, B).version, node_map(A1).version, node_map(B).version,
                node_map().version}) == 5
    assert node_map(A1).version != NodeMap.of("c2", "10.128.0.0/12", {("a", "default"): Part.of(A1)}).version


def test_the_book_applies_complete_maps_and_chained_deltas_only() -> None:
    first, second, third = node_map(A1, B), node_map(A2, B), node_map(C)
    book = MapBook()
    with pytest.raises(MapChainBroken):  # a delta before any complete map
        book.apply(delta(first.version, first.held, second))
    assert book.apply(complete(first)) == complete(first)
    assert book.apply(agent_pb2.NetworkMap()) is None  # version 0: unchanged
    assert book.version == first.version
    with pytest.raises(ChainBroken, match="does not apply on held map version"):  # skips `second`
        book.apply(delta(second.version, second.held, third))
    assert book.version == first.version and book.complete() == complete(first)  # nothing applied
    assert book.apply(delta(first.version, first.held, second)) == complete(second)
    assert book.apply(complete(third)) == complete(third)  # a complete map replaces whatever is held


def test_after_any_sequence_of_deltas_the_agent_holds_the_complete_map() -> None:
    """Random edits of a cluster (seeded); after each batch some nodes' sessions get a delta
    from what they hold, the others wait (as a session whose unsent map is replaced: the next
    delta spans several batches). Each agent's book must then equal ``network_map``."""
    rnd = random.Random(15)
    w = shop()
    maps = NetworkMaps(w.state)
    w.take()
    books = {node: MapBook() for node in NODES}
    held: dict[str, NodeMap] = {}
    for node in NODES:  # the session opens: a complete map
        held[node] = maps.parts_for(w.state, node)
        books[node].apply(complete(held[node]))
    deltas = removals = 0
    for step in range(400):
        random_edits(rnd, w)
        settle(maps, w)
        for node in NODES:
            if rnd.random() < 0.3:
                continue  # not sent this time
            target = maps.parts_for(w.state, node)
            if target.version == held[node].version:
                continue
            d = delta(held[node].version, held[node].held, target)
            deltas += 1
            removals += len(d.removed)
            got = books[node].apply(agent_pb2.NetworkMap.FromString(d.SerializeToString()))  # over the wire
            assert got == network_map(w.state, node), (step, node)
            held[node] = target
    assert deltas > 300 and removals > 20  # the sequence exercised what it claims to
