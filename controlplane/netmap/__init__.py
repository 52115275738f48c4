"""Cross-node application networks: the network map each node receives, computed purely.

Every (application network, node) pair with containers has a block of the cluster's pod
range (:mod:`controlplane.ipam`, ``SubnetAllocation``). For a node to route its peers' blocks
(host-gw), let exactly those blocks reach its own (firewall) and answer service names (its
resolver), it needs, for every network it has a block of: all the blocks of that network with
their nodes' addresses, and every service name and alias of the network with the addresses of
the containers that stand for it. That is the ``NetworkMap`` of ``protos/ccs/v1/agent.proto``,
and this package computes it as a pure function of the informer's records, like the routing
table (:mod:`controlplane.routing`):

* no one stores it: any API server derives the same map with the same content-hash version
  (:mod:`controlplane.content_version`), and the dispatcher sends a node its map when the
  session opens and, when the version changes, the networks that changed
  (:mod:`controlplane.netmap.delta`);
* names answer containers that are ready and not leaving, the rule the routers use
  (:func:`controlplane.planner.containers.is_ready`/``is_leaving``): a container that turns
  ready is answered, one that drains stops being answered as soon as the routers stop sending
  it requests, and a name with none of those is kept with no addresses (so resolvers do not
  forward it elsewhere);
* addresses are what the agents read from their engines (``ContainerStatus.addresses``, by
  Compose network name); every Compose network is a network of its own (its own blocks,
  ``SubnetAllocation`` keyed by its name), and one marked ``external`` joins a cluster network
  shared with the other applications on it (``AppNetwork.shared``).

:func:`network_map` is the definition; :class:`NetworkMaps` keeps the maps of a cluster current
change by change at the cost of what changed, not of the cluster (see its module).
"""

from .build import (
    ClusterView,
    app_networks,
    assemble,
    assemble_encoded,
    encode_network,
    network_map,
    service_networks,
    serving,
)
from .cache import NetworkMaps
from .delta import NodeMap, Part, complete, delta

__all__ = [
    "ClusterView",
    "NetworkMaps",
    "NodeMap",
    "Part",
    "app_networks",
    "assemble",
    "assemble_encoded",
    "complete",
    "delta",
    "encode_network",
    "network_map",
    "service_networks",
    "serving",
]
