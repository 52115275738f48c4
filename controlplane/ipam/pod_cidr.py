"""A cluster's range (``pod_cidr``): what is accepted, and the default when none is given."""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable
from ipaddress import IPv4Network

#: The ranges a cluster may take its range from: private (RFC 1918) and shared (RFC 6598)
#: address space, which no public host needs to reach.
PRIVATE = tuple(
    ipaddress.IPv4Network(n) for n in ("10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "100.64.0.0/10")
)
#: Docker's default address pools: a cluster range there would clash with the engine's own
#: docker0 and with networks made outside ccs.
ENGINE_POOLS = (
    *(ipaddress.IPv4Network((f"172.{second}.0.0", 16)) for second in range(17, 32)),
    ipaddress.IPv4Network("192.168.0.0/16"),
)
#: Widest and narrowest range accepted: a /20 still holds 256 /28 blocks.
WIDEST, NARROWEST = 8, 20
#: The default ranges, in the order they are handed out: the upper half of 10.0.0.0/8
#: first (the lower half is where cloud VPCs and office networks usually sit), then the rest.
DEFAULT_CANDIDATES = tuple(
    ipaddress.IPv4Network((f"10.{second}.0.0", 12)) for second in [*range(128, 256, 16), *range(0, 128, 16)]
)


class PodCidrError(ValueError):
    """A refused range; the message says why (the field is ``pod_cidr``)."""


def parse_pod_cidr(text: str, *, taken: Iterable[IPv4Network] = ()) -> IPv4Network:
    """Validate a range given by the user; ``taken`` are the other clusters' ranges."""
    try:
        net = ipaddress.IPv4Network(text.strip(), strict=True)
    except ValueError as exc:
        if len(text) > 64:  # the value is echoed, and ipaddress's reason repeats it: keep it short
            raise PodCidrError(f"must be an IPv4 network such as 10.128.0.0/12, got {text[:64]!r}... "
                               f"({len(text)} characters)") from None
        raise PodCidrError(f"must be an IPv4 network such as 10.128.0.0/12, got {text!r} ({exc})") from None
    if not WIDEST <= net.prefixlen <= NARROWEST:
        raise PodCidrError(f"must be a /{WIDEST} to a /{NARROWEST}, got /{net.prefixlen}")
    if not any(net.subnet_of(p) for p in PRIVATE):
        raise PodCidrError(f"must lie inside a private range ({', '.join(map(str, PRIVATE))}), got {net}")
    for pool in ENGINE_POOLS:
        if net.overlaps(pool):
            raise PodCidrError(f"{net} overlaps the Docker Engine's default address pool {pool}")
    for other in taken:
        if net.overlaps(other):
            raise PodCidrError(f"{net} overlaps {other}, the range of another cluster")
    return net


def default_pod_cidr(taken: Iterable[IPv4Network]) -> IPv4Network | None:
    """The first default /12 that overlaps none of ``taken``; None when all 16 are taken."""
    used = list(taken)
    for candidate in DEFAULT_CANDIDATES:
        if not any(candidate.overlaps(t) for t in used):
            return candidate
    return None
