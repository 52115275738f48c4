"""Names of application networks that the control plane and the agent must spell alike.

A protocol fact of ``Container.subnets`` (and of a ``SubnetAllocation``'s etcd key), so it lives in
``ccs``, which both the control plane and the agent may import, as :mod:`ccs.container_states`
does for container states. Pure: no imports.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Final

__all__ = ["DEFAULT_NETWORK", "joined_networks"]

#: The Compose network a service that lists none is on (as in Compose), and its key in
#: ``Container.subnets`` and in the etcd key of a ``SubnetAllocation``.
DEFAULT_NETWORK: Final = "default"


def joined_networks(names: Iterable[str]) -> tuple[str, ...]:
    """The Compose networks a service joins, in template order, from the names its spec lists
    (``ServiceSpec.networks[].name``): ``("default",)`` when it lists none, as in Compose.

    Each is a network of its own: its own blocks per node, bridge, firewall set and names."""
    out = tuple(dict.fromkeys(n or DEFAULT_NETWORK for n in names))
    return out or (DEFAULT_NETWORK,)
