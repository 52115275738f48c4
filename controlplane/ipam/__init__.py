"""Address management: which IPv4 subnet each application network gets on each node.

Why the control plane allocates, and not the engine: Docker hands every new bridge network a
block from its default pools (172.17-31.0.0/16 and 192.168.0.0/16 cut into /20s: 31 networks),
so a node ran out after about 29 applications. Here every cluster owns a range (its
``pod_cidr``, ``ccs cluster create --pod-cidr``; by default a /12 inside 10.0.0.0/8 that no
other cluster of the control plane uses) and every (application network, node) pair that has
containers gets a small block of it (every Compose network of an application is a network of
its own, with its own blocks), stored in etcd (``SubnetAllocation``) in the same
transaction as the placement that needs it and released when no container of the pair holds
it any more, or with the node. The agent creates a bridge with each block as its subnet. A pair
whose blocks fill gets another block (:mod:`controlplane.ipam.shares`).

The same records are what cross-node networking (issue 11) routes by: every block belongs to
one node, so a host-gw route "block via node address" per remote block, and a firewall rule per
application made of its blocks, follow from the table without any other state.

Sizing (the arithmetic is also in the README):

- a block holds at least twice the containers the pair has when it is allocated (a
  start-first rolling update runs the new container beside the old one), at least a /28
  (16 addresses, 13 for containers: the engine keeps the network, gateway and broadcast
  addresses), at most a /20 (4,093, what the engine's own pools give a network);
- 1,000 single-container applications on one node take 1,000 /28 = 16,000 addresses, 1.5 %
  of a /12 (1,048,576 addresses = 65,536 /28 blocks);
- the scale benchmark (40 applications x 500 replicas spread over 500 nodes, 20,000 pairs)
  takes 20,000 /28 = 320,000 addresses, 31 % of a /12; the same 20,000 containers over 2,000
  nodes are at most 20,000 pairs as well. 65,536 pairs are the ceiling of a /12; a larger
  cluster takes a larger ``--pod-cidr`` (a /10 holds 262,144 pairs).

Allocation is next-fit (from the end of the highest block in use, wrapping once), so a block
freed a moment ago - whose bridge may still exist on its node while the agent removes it - is
the last to be handed out again. This package is pure: no etcd, no clock.
"""

from controlplane.ipam.blocks import (
    DEFAULT_NETWORK,
    MAX_BLOCK_PREFIX,
    MIN_BLOCK_PREFIX,
    SubnetPool,
    block_prefix,
    usable_addresses,
)
from controlplane.ipam.growth import growth_hold
from controlplane.ipam.pod_cidr import DEFAULT_CANDIDATES, PodCidrError, default_pod_cidr, parse_pod_cidr
from controlplane.ipam.shares import (
    GROWTH_HELD,
    MAX_BLOCKS,
    RANGE_FULL,
    TOO_MANY_BLOCKS,
    Fill,
    ShareBlock,
    fill_share,
)

__all__ = [
    "DEFAULT_CANDIDATES",
    "DEFAULT_NETWORK",
    "GROWTH_HELD",
    "MAX_BLOCKS",
    "MAX_BLOCK_PREFIX",
    "MIN_BLOCK_PREFIX",
    "RANGE_FULL",
    "TOO_MANY_BLOCKS",
    "Fill",
    "PodCidrError",
    "ShareBlock",
    "SubnetPool",
    "block_prefix",
    "default_pod_cidr",
    "fill_share",
    "growth_hold",
    "parse_pod_cidr",
    "usable_addresses",
]
