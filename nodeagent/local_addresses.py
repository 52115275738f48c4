"""The addresses of this node's containers, as the node resolver and the network fabric ask.

The executor learns a container's addresses when it reports its status; three questions are
asked of them from elsewhere, each answered by a map kept here:
- `service_dns(source)`: the Compose `dns` servers of the container at `source`, so the node
  resolver forwards that container's other names where its service asked;
- `networks_of(source)`: the application and Compose networks of the container at `source` (a
  container on several networks resolves all of their names, whichever address it asks from);
- `endpoints()`: the running containers on several networks, which the network fabric routes
  inside (nodeagent/network/endpoints.py); `on_endpoints` is told when that set changes.

An address can move from one container to the next (a replacement may be given the address
of the container it replaces): an address is dropped only while it is still the dropping
container's.
"""

from __future__ import annotations

from collections.abc import Callable

from ccs.networks import joined_networks
from ccs.v1 import resources_pb2

#: (pid, application, ((Compose network, address), ...) in template order)
Endpoint = tuple[int, str, tuple[tuple[str, str], ...]]


class LocalAddresses:
    def __init__(self, on_endpoints: Callable[[], None] | None = None) -> None:
        # Container id -> (its addresses, its service's Compose `dns` servers); only containers
        # that set `dns`.
        self._dns: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {}
        # Address -> (application, the Compose networks of the container holding it).
        self._asker: dict[str, tuple[str, tuple[str, ...]]] = {}
        self._addresses: dict[str, tuple[str, ...]] = {}  # ccs container id -> its addresses
        self._owners: dict[str, str] = {}  # address -> the ccs container id that holds it
        self._endpoints: dict[str, Endpoint] = {}
        self._on_endpoints = on_endpoints

    def service_dns(self, source: str) -> tuple[str, ...]:
        """The `dns` servers of the container at `source` (none: empty). Linear in the local
        containers that set `dns`: a handful."""
        for addresses, servers in self._dns.values():
            if source in addresses:
                return servers
        return ()

    def networks_of(self, source: str) -> tuple[str, tuple[str, ...]] | None:
        """The application and Compose networks of the container whose address (on any of its
        networks) is `source`; None when no local container has it."""
        return self._asker.get(source)

    def endpoints(self) -> list[Endpoint]:
        """The running local containers on several networks."""
        return list(self._endpoints.values())

    def note(self, cid: str, c: resources_pb2.Container, pid: int, addresses: dict[str, str]) -> None:
        """What `cid` reports now: its addresses by network (none: it has left them) and its
        process id (0: not running)."""
        if addresses and c.spec.dns:
            self._dns[cid] = (tuple(addresses.values()), tuple(c.spec.dns))
        else:
            self._dns.pop(cid, None)
        self._note_addresses(cid, c.application, addresses)
        self._note_endpoint(cid, c, pid, addresses)

    def forget(self, cid: str) -> None:
        self._dns.pop(cid, None)
        self._note_addresses(cid, "", {})
        self._endpoints.pop(cid, None)

    def _note_endpoint(self, cid: str, c: resources_pb2.Container, pid: int, addresses: dict[str, str]) -> None:
        entry = None
        if pid and len(addresses) > 1:
            order = joined_networks(n.name for n in c.spec.networks)
            ranked = sorted(addresses.items(),
                            key=lambda kv: (order.index(kv[0]) if kv[0] in order else len(order), kv[0]))
            entry = (pid, c.application, tuple(ranked))
        if self._endpoints.get(cid) == entry:
            return
        if entry is None:
            self._endpoints.pop(cid, None)
        else:
            self._endpoints[cid] = entry
        if self._on_endpoints is not None:
            self._on_endpoints()

    def _note_addresses(self, cid: str, app: str, addresses: dict[str, str]) -> None:
        for address in self._addresses.pop(cid, ()):
            if self._owners.get(address) == cid:
                self._asker.pop(address, None)
                self._owners.pop(address, None)
        if addresses:
            networks = tuple(sorted(addresses))
            self._addresses[cid] = tuple(addresses.values())
            for address in addresses.values():
                self._asker[address] = (app, networks)
                self._owners[address] = cid
