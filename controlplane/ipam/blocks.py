"""Blocks of a cluster's range: sizing and a next-fit allocator over the blocks in use."""

from __future__ import annotations

import bisect
import ipaddress
from collections.abc import Iterable
from ipaddress import IPv4Network

# The key of the network a service that lists none is on: one definition with the agent.
# Re-exported by controlplane.ipam. Every Compose network has blocks of its own, keyed by its name.
from ccs.networks import DEFAULT_NETWORK as DEFAULT_NETWORK

#: The smallest block: 16 addresses, 13 for containers.
MIN_BLOCK_PREFIX = 28
#: The largest block: what the engine's default pools give one network.
MAX_BLOCK_PREFIX = 20
#: Addresses of a bridge subnet the engine keeps for itself: network, gateway, broadcast.
RESERVED = 3
#: A block holds this many times the containers the pair has when it is allocated.
HEADROOM = 2


def usable_addresses(prefix: int) -> int:
    """Container addresses in a block of ``prefix``."""
    return (1 << (32 - prefix)) - RESERVED


def block_prefix(containers: int) -> int:
    """The prefix of the block for a pair that has ``containers`` containers now."""
    need = max(1, containers) * HEADROOM
    prefix = MIN_BLOCK_PREFIX
    while prefix > MAX_BLOCK_PREFIX and usable_addresses(prefix) < need:
        prefix -= 1
    return prefix


class SubnetPool:
    """The free space of ``pool`` given the blocks ``used``; hands out aligned blocks.

    Used blocks are kept as sorted, merged address intervals, so one allocation costs a
    binary search per skipped interval (the scale benchmark holds 20,000 blocks). Blocks in
    use that lie outside ``pool`` are ignored.
    """

    def __init__(self, pool: IPv4Network, used: Iterable[IPv4Network] = ()) -> None:
        self.pool = pool
        self._first = int(pool.network_address)
        self._last = int(pool.broadcast_address)
        intervals = sorted(
            (max(int(b.network_address), self._first), min(int(b.broadcast_address), self._last))
            for b in used
            if b.overlaps(pool)
        )
        self._starts: list[int] = []
        self._ends: list[int] = []
        for lo, hi in intervals:  # merge, so that ends are increasing too
            if self._ends and lo <= self._ends[-1] + 1:
                self._ends[-1] = max(self._ends[-1], hi)
            else:
                self._starts.append(lo)
                self._ends.append(hi)
        self._cursor = self._ends[-1] + 1 if self._ends else self._first

    def allocate(self, prefix: int) -> IPv4Network | None:
        """A free block of ``prefix`` (next-fit), marked used; None when the pool is full."""
        if not self.pool.prefixlen <= prefix <= 32:
            raise ValueError(f"prefix: must be between /{self.pool.prefixlen} and /32, got /{prefix}")
        size = 1 << (32 - prefix)
        for lo, hi in ((self._cursor, self._last), (self._first, min(self._cursor + size - 1, self._last))):
            start = self._first_fit(lo, hi, size)
            if start is not None:
                self._mark(start, start + size - 1)
                self._cursor = start + size
                return IPv4Network((start, prefix))
        return None

    def release(self, block: IPv4Network) -> None:
        """Give ``block`` back (it must be one that was allocated or passed as used)."""
        lo, hi = int(block.network_address), int(block.broadcast_address)
        i = bisect.bisect_right(self._starts, lo) - 1
        if i < 0 or self._ends[i] < hi:
            return  # not in use: nothing to free
        start, end = self._starts[i], self._ends[i]
        del self._starts[i], self._ends[i]
        for a, b in ((start, lo - 1), (hi + 1, end)):
            if a <= b:
                j = bisect.bisect_left(self._starts, a)
                self._starts.insert(j, a)
                self._ends.insert(j, b)

    def in_use(self, block: IPv4Network) -> bool:
        """Whether any address of ``block`` is in use."""
        lo, hi = int(block.network_address), int(block.broadcast_address)
        i = bisect.bisect_right(self._starts, hi) - 1
        return i >= 0 and self._ends[i] >= lo

    def _first_fit(self, lo: int, hi: int, size: int) -> int | None:
        start = _align_up(lo, size, self._first)
        while start + size - 1 <= hi:
            # The interval with the largest start inside the candidate is the only one that
            # can overlap it: intervals are disjoint and sorted, so earlier ones end sooner.
            i = bisect.bisect_right(self._starts, start + size - 1) - 1
            if i >= 0 and self._ends[i] >= start:
                start = _align_up(self._ends[i] + 1, size, self._first)
                continue
            return start
        return None

    def _mark(self, lo: int, hi: int) -> None:
        i = bisect.bisect_left(self._starts, lo)
        self._starts.insert(i, lo)
        self._ends.insert(i, hi)
        # Merge with neighbours that touch, keeping the lists disjoint and sorted.
        if i + 1 < len(self._starts) and self._starts[i + 1] == hi + 1:
            self._ends[i] = self._ends[i + 1]
            del self._starts[i + 1], self._ends[i + 1]
        if i > 0 and self._ends[i - 1] + 1 == lo:
            self._ends[i - 1] = self._ends[i]
            del self._starts[i], self._ends[i]


def _align_up(address: int, size: int, base: int) -> int:
    offset = (address - base + size - 1) // size * size
    return base + offset


def parse_block(text: str) -> IPv4Network | None:
    """A stored block, or None when the text is not an IPv4 network."""
    try:
        return ipaddress.IPv4Network(text)
    except ValueError:
        return None
