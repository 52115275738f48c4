"""The resolver's answers: (query, source address, names) -> a response, or None to forward. Pure.

Who asks: every ccs container is created with the node resolver as its DNS server. On a
user-defined network Docker's embedded DNS (127.0.0.11) answers container names itself and
forwards every other query to that server *from inside the container's network namespace*, so
the query arrives with the container's own address as its source. The source's block (a block
of this node in the map) says which application network asks, and only that network's names
are answered, as Docker scopes aliases to a network:

- a service name or alias of the asking network, type A: every ready address cluster-wide
  (the map's `names`), rotated per query so clients that take the first address spread out;
- the same name, another type (AAAA, TXT, ...): an empty NOERROR answer (the name exists;
  NXDOMAIN would make a client give up on its A query too);
- anything else, or a source that is no block of this node: forwarded (`None`).

TTL: 1 s. The resolver answers from the map it holds, which the control plane sends within
moments of a container turning ready or starting to drain; Docker's embedded DNS and libc do
not cache, so the TTL only matters to clients that cache (JVMs, nginx's resolver). One second
keeps such a client at most one second behind the map (the issue's budget is 2 s from ready to
resolvable) while sparing a busy client a query per connection; 0 is treated as "do not
cache" by some caches and as "use my minimum" by others, so it is less predictable than 1.

A container on several networks of its application queries from the address of the network
that holds its default route, so it resolves that network's names: the map alone cannot tell
its other addresses apart from another container's.
"""

from __future__ import annotations

import bisect
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from ipaddress import IPv4Address, IPv4Network

import dns.exception
import dns.flags
import dns.message
import dns.rcode
import dns.rdataclass
import dns.rdatatype
import dns.rrset

from .plan import FabricPlan, NetKey, normalise_name

TTL = 1


@dataclass(frozen=True, slots=True)
class NameTable:
    """Source blocks of this node and the names each application network answers."""

    blocks: tuple[tuple[IPv4Network, NetKey], ...] = ()
    names: Mapping[NetKey, Mapping[str, tuple[IPv4Address, ...]]] = field(default_factory=dict)
    # The blocks' first addresses, for the bisect of every query (derived once, not per query).
    _starts: tuple[int, ...] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_starts", tuple(int(b.network_address) for b, _ in self.blocks))

    @classmethod
    def from_plan(cls, plan: FabricPlan) -> NameTable:
        blocks = sorted((b, n.key) for n in plan.networks for b in n.local)
        return cls(tuple(blocks), {n.key: n.names for n in plan.networks})

    def network_of(self, source: str) -> NetKey | None:
        """The application network whose block on this node holds `source`."""
        try:
            addr = IPv4Address(source)
        except ValueError:
            return None
        i = bisect.bisect_right(self._starts, int(addr)) - 1
        if i >= 0 and addr in self.blocks[i][0]:
            return self.blocks[i][1]
        return None

    def lookup(self, source: str, qname: str) -> tuple[IPv4Address, ...] | None:
        """The addresses `qname` stands for, seen from `source`; None: not a name of its network."""
        key = self.network_of(source)
        if key is None:
            return None
        return self.names.get(key, {}).get(normalise_name(qname))


def answer(
    query: dns.message.Message, source: str, table: NameTable, *, rotate: int = 0
) -> dns.message.Message | None:
    """The response to `query` from `source`, or None when it must be forwarded."""
    if query.opcode() != 0 or len(query.question) != 1:
        return None
    q = query.question[0]
    if q.rdclass != dns.rdataclass.IN:
        return None
    addresses = table.lookup(source, q.name.to_text())
    if addresses is None:
        return None
    response = dns.message.make_response(query)
    response.flags |= dns.flags.AA | dns.flags.RA
    if q.rdtype in (dns.rdatatype.A, dns.rdatatype.ANY) and addresses:
        k = rotate % len(addresses)
        ordered = addresses[k:] + addresses[:k]
        response.answer.append(
            dns.rrset.from_text_list(q.name, TTL, dns.rdataclass.IN, dns.rdatatype.A, [str(a) for a in ordered])
        )
    return response


def failure(query: dns.message.Message, rcode: dns.rcode.Rcode = dns.rcode.SERVFAIL) -> dns.message.Message:
    response = dns.message.make_response(query)
    response.flags |= dns.flags.RA
    response.set_rcode(rcode)
    return response


def to_wire(response: dns.message.Message, limit: int) -> bytes:
    """The response in at most `limit` bytes: if it does not fit, its header and question with
    TC set, so the client asks again over TCP (RFC 1035 4.2.1, RFC 7766)."""
    try:
        return bytes(response.to_wire(max_size=limit))
    except dns.exception.TooBig:
        short = dns.message.Message(id=response.id)
        short.flags = response.flags | dns.flags.TC
        short.question = list(response.question)
        if response.edns >= 0:
            short.use_edns(response.edns, response.ednsflags, response.payload)
        short.set_rcode(response.rcode())
        return bytes(short.to_wire(max_size=limit))


def udp_limit(query: dns.message.Message) -> int:
    """The largest UDP response the client accepts: its EDNS payload size, else 512 bytes."""
    return max(512, query.payload) if query.edns >= 0 else 512


def parse_resolv_conf(text: str, *, skip: Sequence[str] = ()) -> list[str]:
    """The `nameserver` addresses of a resolv.conf, in order, without those in `skip` (the
    resolver's own address: forwarding to itself would loop)."""
    servers: list[str] = []
    for line in text.splitlines():
        parts = line.split("#", 1)[0].split(";", 1)[0].split()
        if len(parts) >= 2 and parts[0] == "nameserver" and parts[1] not in skip and parts[1] not in servers:
            servers.append(parts[1])
    return servers


__all__ = ["TTL", "NameTable", "answer", "failure", "parse_resolv_conf", "to_wire", "udp_limit"]
