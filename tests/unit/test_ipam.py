"""Table tests of the subnet allocator and the cluster range rules (controlplane/ipam)."""

from __future__ import annotations

import ipaddress
import itertools

import pytest

from controlplane.ipam import (
    DEFAULT_CANDIDATES,
    PodCidrError,
    SubnetPool,
    block_prefix,
    default_pod_cidr,
    parse_pod_cidr,
    usable_addresses,
)

N = ipaddress.IPv4Network


@pytest.mark.parametrize(("containers", "prefix"), [
    (0, 28), (1, 28), (6, 28),  # 2x headroom: 12 <= 13 usable in a /28
    (7, 27), (14, 27),          # 28 <= 29
    (15, 26), (30, 26),         # the deploy benchmark: 30 replicas on one node
    (31, 25), (500, 22), (1000, 21),
    (5000, 20),                 # never wider than what the engine's pools give a network
])
def test_block_prefix(containers: int, prefix: int) -> None:
    assert block_prefix(containers) == prefix


def test_usable_addresses_leave_network_gateway_and_broadcast() -> None:
    assert usable_addresses(28) == 13
    assert usable_addresses(20) == 4093


@pytest.mark.parametrize(("name", "pool", "used", "prefixes", "expected"), [
    ("empty pool: aligned blocks from the start", "10.0.0.0/24", [], [28, 28, 27],
     ["10.0.0.0/28", "10.0.0.16/28", "10.0.0.32/27"]),
    ("a bigger block skips to its alignment", "10.0.0.0/24", [], [28, 26],
     ["10.0.0.0/28", "10.0.0.64/26"]),
    ("next-fit: after the highest block in use, not in the hole below", "10.0.0.0/24",
     ["10.0.0.16/28"], [28, 28], ["10.0.0.32/28", "10.0.0.48/28"]),
    ("wraps to the hole below when the top is full", "10.0.0.0/26",
     ["10.0.0.16/28", "10.0.0.32/27"], [28, 28], ["10.0.0.0/28", None]),
    ("full pool", "10.0.0.0/28", ["10.0.0.0/28"], [28], [None]),
    ("a block too big for the holes left", "10.0.0.0/26", ["10.0.0.16/28"], [27, 27],
     ["10.0.0.32/27", None]),
    ("blocks outside the pool are ignored", "10.0.0.0/27", ["192.0.2.0/24", "10.0.0.0/28"], [28, 28],
     ["10.0.0.16/28", None]),
    ("overlapping records are merged, not trusted to be disjoint", "10.0.0.0/26",
     ["10.0.0.0/27", "10.0.0.16/28", "10.0.0.8/29"], [28, 28, 28],
     ["10.0.0.32/28", "10.0.0.48/28", None]),
    ("a pool that is one block", "10.9.0.0/28", [], [28, 28], ["10.9.0.0/28", None]),
])
def test_allocate(name: str, pool: str, used: list[str], prefixes: list[int], expected: list[str | None]) -> None:
    p = SubnetPool(N(pool), [N(u) for u in used])
    got = [p.allocate(prefix) for prefix in prefixes]
    assert [str(g) if g else None for g in got] == expected, name


def test_release_frees_exactly_the_block_and_it_is_handed_out_last() -> None:
    p = SubnetPool(N("10.0.0.0/26"))
    a, b, c = (p.allocate(28) for _ in range(3))
    assert (str(a), str(b), str(c)) == ("10.0.0.0/28", "10.0.0.16/28", "10.0.0.32/28")
    assert b is not None
    p.release(b)
    assert not p.in_use(b)
    assert p.in_use(N("10.0.0.0/28")) and p.in_use(N("10.0.0.32/28"))
    # The cursor is past c: the top block goes first, the freed one only after a wrap.
    assert str(p.allocate(28)) == "10.0.0.48/28"
    assert str(p.allocate(28)) == "10.0.0.16/28"
    assert p.allocate(28) is None


def test_release_of_a_block_not_in_use_changes_nothing() -> None:
    p = SubnetPool(N("10.0.0.0/27"), [N("10.0.0.0/28")])
    p.release(N("10.0.0.16/28"))
    assert p.in_use(N("10.0.0.0/28"))
    assert str(p.allocate(28)) == "10.0.0.16/28"


def test_prefix_outside_the_pool_is_refused() -> None:
    with pytest.raises(ValueError, match="prefix"):
        SubnetPool(N("10.0.0.0/24")).allocate(16)


def test_a_thousand_apps_on_one_node_and_the_scale_benchmark_fit_a_default_range() -> None:
    """The README's arithmetic: 1,000 /28 on a node; 20,000 pairs in a /12, blocks disjoint."""
    p = SubnetPool(DEFAULT_CANDIDATES[0])
    blocks = [p.allocate(block_prefix(1)) for _ in range(20_000)]
    assert all(b is not None for b in blocks)
    ints = sorted(int(b.network_address) for b in blocks if b is not None)
    assert len(set(ints)) == 20_000 and all(b - a >= 16 for a, b in itertools.pairwise(ints))
    rest = 0
    while p.allocate(28) is not None:
        rest += 1
    assert 20_000 + rest == 65_536  # a /12 holds 65,536 /28 blocks


@pytest.mark.parametrize(("text", "taken", "error"), [
    ("10.128.0.0/12", [], None),
    ("100.100.0.0/16", [], None),
    ("10.0.0.0/8", [], None),
    ("not a network", [], "must be an IPv4 network"),
    ("10.128.0.1/12", [], "must be an IPv4 network"),  # host bits set
    ("fd00::/64", [], "must be an IPv4 network"),
    ("10.0.0.0/24", [], "must be a /8 to a /20"),
    ("8.8.0.0/16", [], "must lie inside a private range"),
    ("172.17.0.0/16", [], "default address pool 172.17.0.0/16"),
    ("192.168.0.0/20", [], "default address pool 192.168.0.0/16"),
    ("172.16.0.0/16", [], None),  # inside 172.16/12 but not in the engine's pools
    ("10.128.0.0/16", ["10.128.0.0/12"], "overlaps 10.128.0.0/12, the range of another cluster"),
])
def test_parse_pod_cidr(text: str, taken: list[str], error: str | None) -> None:
    if error is None:
        assert str(parse_pod_cidr(text, taken=[N(t) for t in taken])) == text
    else:
        with pytest.raises(PodCidrError, match=error.replace(".", r"\.").replace("/", "/")):
            parse_pod_cidr(text, taken=[N(t) for t in taken])


def test_default_pod_cidr_takes_the_first_free_candidate() -> None:
    assert str(default_pod_cidr([])) == "10.128.0.0/12"
    assert str(default_pod_cidr([N("10.128.0.0/12")])) == "10.144.0.0/12"
    assert str(default_pod_cidr([N("10.130.0.0/16"), N("10.144.0.0/24")])) == "10.160.0.0/12"
    assert default_pod_cidr([N("10.0.0.0/8")]) is None
    assert len(DEFAULT_CANDIDATES) == 16 and len(set(DEFAULT_CANDIDATES)) == 16
