"""``fill_share``: a pair's containers take the first block with room; a full pair grows by a
block sized like the first (twice what it will hold); indexes are the lowest free ones; the
range or the bound on blocks per pair leave the rest without a block, with the reason."""

from __future__ import annotations

from ipaddress import IPv4Network

from controlplane.ipam import (
    MAX_BLOCKS,
    RANGE_FULL,
    TOO_MANY_BLOCKS,
    ShareBlock,
    SubnetPool,
    fill_share,
    usable_addresses,
)

RANGE = IPv4Network("10.128.0.0/16")


def pool(*used: str) -> SubnetPool:
    return SubnetPool(RANGE, [IPv4Network(u) for u in used])


def test_a_first_block_is_sized_for_what_the_pair_will_hold() -> None:
    fill = fill_share([], 3, expected=0, allocate=pool().allocate)
    assert fill.new == [ShareBlock(0, IPv4Network("10.128.0.0/28"))]
    assert [b.index if b else None for b in fill.assigned] == [0, 0, 0]
    assert fill_share([], 1, expected=31, allocate=pool().allocate).new[0].subnet.prefixlen == 25


def test_containers_take_the_first_block_with_room() -> None:
    blocks = [ShareBlock(0, IPv4Network("10.128.0.0/28"), holders=13),
              ShareBlock(1, IPv4Network("10.128.0.32/27"), holders=28)]
    fill = fill_share(blocks, 1, expected=0, allocate=pool("10.128.0.0/28", "10.128.0.32/27").allocate)
    assert fill.new == [] and fill.assigned == [ShareBlock(1, IPv4Network("10.128.0.32/27"))]
    # A container of the first block left: the next one takes its address.
    blocks[0] = ShareBlock(0, IPv4Network("10.128.0.0/28"), holders=12)
    assert fill_share(blocks, 1, 0, pool().allocate).assigned == [ShareBlock(0, IPv4Network("10.128.0.0/28"))]


def test_a_pair_whose_block_fills_gets_a_second_one_sized_for_all_it_will_hold() -> None:
    """A /28 holds 13: with 12 held, 2 more put 1 on it and 1 on a new block sized for the 14
    the pair then holds (twice that, 28: a /27, 29 addresses)."""
    first = ShareBlock(0, IPv4Network("10.128.0.0/28"), holders=12)
    fill = fill_share([first], 2, expected=0, allocate=pool("10.128.0.0/28").allocate)
    assert fill.new == [ShareBlock(1, IPv4Network("10.128.0.32/27"))]
    assert [b.index if b else None for b in fill.assigned] == [0, 1]
    assert usable_addresses(27) == 29


def test_a_freed_first_block_leaves_its_index_to_the_next_one() -> None:
    """The first block was freed while the second stays: the next new block is index 0 again
    (the bridge name it had), not 2."""
    second = ShareBlock(1, IPv4Network("10.128.0.32/28"), holders=13)
    fill = fill_share([second], 1, expected=0, allocate=pool("10.128.0.32/28").allocate)
    assert [b.index for b in fill.new] == [0]


def test_a_full_range_or_too_many_blocks_leave_containers_without_a_block() -> None:
    full = SubnetPool(IPv4Network("10.128.0.0/20"), [IPv4Network("10.128.0.0/20")])
    first = ShareBlock(0, IPv4Network("10.128.0.0/28"), holders=12)
    fill = fill_share([first], 3, expected=0, allocate=full.allocate)
    assert [b.index if b else None for b in fill.assigned] == [0, None, None]
    assert (fill.short, fill.new) == (RANGE_FULL, [])

    many = [ShareBlock(i, IPv4Network(f"10.128.{i}.0/28"), holders=13) for i in range(MAX_BLOCKS)]
    fill = fill_share(many, 2, expected=0, allocate=pool().allocate)
    assert fill.assigned == [None, None] and fill.short == TOO_MANY_BLOCKS and fill.new == []


def test_growth_is_geometric_so_a_pair_needs_few_blocks() -> None:
    """Placing one container at a time up to 2,000: the blocks stay few (the README's figures)."""
    blocks: list[ShareBlock] = []
    allocate = pool().allocate
    for _ in range(2000):
        fill = fill_share(blocks, 1, expected=0, allocate=allocate)
        [got] = fill.assigned
        assert got is not None
        blocks = [ShareBlock(b.index, b.subnet, b.holders + (b.index == got.index)) for b in blocks]
        blocks += [ShareBlock(b.index, b.subnet, 1) for b in fill.new]
    assert [b.subnet.prefixlen for b in blocks] == [28, 27, 25, 23, 21]
    assert sum(b.holders for b in blocks) == 2000


def test_past_the_21_the_next_block_is_a_20_the_largest() -> None:
    """The README's "from there every further block is a /20": 3,000 containers one at a time."""
    blocks: list[ShareBlock] = []
    allocate = pool().allocate
    for _ in range(3000):
        fill = fill_share(blocks, 1, expected=0, allocate=allocate)
        [got] = fill.assigned
        assert got is not None
        blocks = [ShareBlock(b.index, b.subnet, b.holders + (b.index == got.index)) for b in blocks]
        blocks += [ShareBlock(b.index, b.subnet, 1) for b in fill.new]
    assert [b.subnet.prefixlen for b in blocks] == [28, 27, 25, 23, 21, 20]
