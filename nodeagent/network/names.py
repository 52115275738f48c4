"""The resolver's answers: (query, asking container's networks, names) -> a response, or None to
forward. Pure.

Who asks: every ccs container is created with the node resolver as its DNS server. On a
user-defined network Docker's embedded DNS (127.0.0.11) answers container names itself and
forwards every other query to that server *from inside the container's network namespace*, so
the query arrives with the container's own address as its source - the address of whichever
of its networks holds its default route. The agent knows the addresses its local containers
have on each of their networks (`Asker`), so that one address stands for the container and
all its networks: a container on `front` and `back` resolves the names of both, as Docker
scopes aliases to the networks a container is on. (A source the agent does not know yet - a
container whose address it has not read - falls back to the network whose block on this node
holds it.)

- a service name or alias of one of the asking container's networks, type A: every ready
  address cluster-wide on those networks (the map's `names`), rotated per query so clients
  that take the first address spread out; the same name on two of its networks answers both
  (the container is on both);
- on a shared cluster network (`ccs network create`, Compose `external: true`): the names of
  the other applications on it as well. The asking container's own application wins a clash
  (its `db` shadows another application's `db`); `SERVICE.APPLICATION` (`db.blog`) names any
  application's service on the shared network without ambiguity; two other applications with
  the same name answer both;
- the same name, another type (AAAA, TXT, ...): an empty NOERROR answer (the name exists;
  NXDOMAIN would make a client give up on its A query too);
- anything else, or a source that is no container of this node: forwarded (`None`).

TTL: 1 s. The resolver answers from the map it holds, which the control plane sends within
moments of a container turning ready or starting to drain; Docker's embedded DNS and libc do
not cache, so the TTL only matters to clients that cache (JVMs, nginx's resolver). One second
keeps such a client at most one second behind the map (the issue's budget is 2 s from ready to
resolvable) while sparing a busy client a query per connection; 0 is treated as "do not
cache" by some caches and as "use my minimum" by others, so it is less predictable than 1.
"""

from __future__ import annotations

import bisect
from collections.abc import Callable, Iterable, Mapping, Sequence
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


#: The networks of the local container at a source address (None: no container the agent knows).
Asker = Callable[[str], Sequence[NetKey] | None]

Addresses = tuple[IPv4Address, ...]


@dataclass(frozen=True, slots=True)
class NameTable:
    """Source blocks of this node and the names each application network answers."""

    blocks: tuple[tuple[IPv4Network, NetKey], ...] = ()
    names: Mapping[NetKey, Mapping[str, Addresses]] = field(default_factory=dict)
    shared: Mapping[NetKey, str] = field(default_factory=dict)  # network -> the cluster network it joins
    groups: Mapping[str, tuple[NetKey, ...]] = field(default_factory=dict)  # cluster network -> its entries
    # The blocks' first addresses, for the bisect of every query (derived once, not per query).
    _starts: tuple[int, ...] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_starts", tuple(int(b.network_address) for b, _ in self.blocks))

    @classmethod
    def from_plan(cls, plan: FabricPlan) -> NameTable:
        blocks = sorted((b, n.key) for n in plan.networks for b in n.local)
        groups: dict[str, list[NetKey]] = {}
        for n in plan.networks:
            if n.shared:
                groups.setdefault(n.shared, []).append(n.key)
        return cls(tuple(blocks), {n.key: n.names for n in plan.networks},
                   {n.key: n.shared for n in plan.networks if n.shared}, {g: tuple(ks) for g, ks in groups.items()})

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

    def asking(self, source: str, asker: Asker | None = None) -> tuple[NetKey, ...]:
        """The networks of the container asking from `source`: the agent's knowledge of its local
        containers, else the network of the block holding `source`."""
        known = asker(source) if asker is not None else None
        if known:
            return tuple(known)
        key = self.network_of(source)
        return () if key is None else (key,)

    def lookup(self, source: str, qname: str, asker: Asker | None = None) -> Addresses | None:
        """The addresses `qname` stands for, asked from `source`; None: not a name of its networks."""
        return self.resolve(self.asking(source, asker), normalise_name(qname))

    def resolve(self, networks: Sequence[NetKey], name: str) -> Addresses | None:
        """`name` (normalised) for a container on `networks`: its own application's names first,
        then, on shared networks, `service.application`, then the other applications' names."""
        if not networks:
            return None
        found = _union(self.names.get(k, {}).get(name) for k in networks)
        if found is not None:
            return found
        others = [k for g in dict.fromkeys(self.shared[k] for k in networks if k in self.shared)
                  for k in self.groups.get(g, ())]
        if not others:
            return None
        service, _, app = name.rpartition(".")
        if service:
            found = _union(self.names.get(k, {}).get(service) for k in others if k.application == app)
            if found is not None:
                return found
        mine = {k.application for k in networks}
        return _union(self.names.get(k, {}).get(name) for k in others if k.application not in mine)


def _union(parts: Iterable[Addresses | None]) -> Addresses | None:
    """The addresses of every part that knows the name (None: none does)."""
    known = [p for p in parts if p is not None]
    if not known:
        return None
    return tuple(sorted({a for p in known for a in p}))


def answer(
    query: dns.message.Message, source: str, table: NameTable, *, rotate: int = 0, asker: Asker | None = None
) -> dns.message.Message | None:
    """The response to `query` from `source`, or None when it must be forwarded."""
    if query.opcode() != 0 or len(query.question) != 1:
        return None
    q = query.question[0]
    if q.rdclass != dns.rdataclass.IN:
        return None
    addresses = table.lookup(source, q.name.to_text(), asker)
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


__all__ = ["TTL", "Asker", "NameTable", "answer", "failure", "parse_resolv_conf", "to_wire", "udp_limit"]
