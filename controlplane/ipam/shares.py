"""A pair's share of the range: which of its blocks a new container takes, and when it grows.

A (node, application network) pair starts with one block, sized for what the pair is expected
to hold (:func:`~controlplane.ipam.blocks.block_prefix`). When the containers its blocks must
hold would not fit (every container of the pair that still exists counts, old ones being
drained included: they keep their addresses until they are removed), the pair gets another
block, sized by the same rule for everything it will then hold: twice that, so each new block
at least doubles the share and a pair needs few of them (13 -> 42 -> 167 -> 676 -> 2,721 ->
6,814 containers with six blocks, the largest a /20). A container takes the first block, by
index, that has a free address.

Why more blocks and not a bigger one: a Docker bridge network has one IPv4 subnet, fixed when
it is made, and its running containers cannot move to another without losing their
connections. Every block is a bridge of its own on the node; the fabric treats all blocks of a
network as that network (routes, firewall sets and names are per network, not per block).

Each block has an index, the lowest one the pair does not use, which names its bridge on the
node: the first (0) keeps the name the one bridge always had. A pair has at most
:data:`MAX_BLOCKS` blocks (a bound on bridges per pair, far above what a node can run: a
Linux bridge takes at most 1,024 ports). Pure: no etcd, no clock.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from ipaddress import IPv4Network

from controlplane.ipam.blocks import block_prefix, usable_addresses

#: The most blocks one (node, application network) pair may have.
MAX_BLOCKS = 16

#: Why a container got no block (``Fill.short``).
RANGE_FULL = "range full"
TOO_MANY_BLOCKS = "too many blocks"
GROWTH_HELD = "growth held"


@dataclass(frozen=True, slots=True)
class ShareBlock:
    """One block of a pair: its index, its subnet, and how many containers hold an address of it."""

    index: int
    subnet: IPv4Network
    holders: int = 0

    @property
    def free(self) -> int:
        return usable_addresses(self.subnet.prefixlen) - self.holders


@dataclass
class Fill:
    """What :func:`fill_share` decided: a block per wanting container (None: none could be had,
    for the reason in ``short``), and the blocks handed out to make room."""

    assigned: list[ShareBlock | None] = field(default_factory=list)
    new: list[ShareBlock] = field(default_factory=list)
    short: str = ""


def fill_share(
    blocks: Sequence[ShareBlock], wanting: int, expected: int, allocate: Callable[[int], IPv4Network | None],
    *, may_grow: bool = True,
) -> Fill:
    """Give ``wanting`` new containers of a pair a block each.

    ``blocks`` are the pair's blocks with their holders now; ``expected`` is what the pair is
    expected to hold (its application's share of the node), which sizes a block when it is
    larger than what the pair will hold; ``allocate(prefix)`` hands out a free block of the
    range (None: the range is full). ``may_grow`` False: a pair that has a block gets no
    further one (:mod:`controlplane.ipam.growth`), its wanting containers past its room are
    left without (``GROWTH_HELD``); a pair without any block still gets its first.
    """
    free = {b.index: b.free for b in blocks}
    subnet = {b.index: b.subnet for b in blocks}
    holding = sum(b.holders for b in blocks)
    out = Fill()
    for placed in range(wanting):
        pick = next((i for i in sorted(subnet) if free[i] > 0), None)
        if pick is None and not out.short:
            if len(subnet) >= MAX_BLOCKS:
                out.short = TOO_MANY_BLOCKS
            elif subnet and not may_grow:
                out.short = GROWTH_HELD
            elif (block := allocate(block_prefix(max(holding + wanting - placed, expected)))) is None:
                out.short = RANGE_FULL
            else:
                pick = next(i for i in itertools.count() if i not in subnet)
                subnet[pick], free[pick] = block, usable_addresses(block.prefixlen)
                out.new.append(ShareBlock(pick, block))
        if pick is None:
            out.assigned.append(None)
            continue
        free[pick] -= 1
        holding += 1
        out.assigned.append(ShareBlock(pick, subnet[pick]))
    return out
