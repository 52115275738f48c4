"""Features that agents and API replicas declare, so that mixed versions during a rolling
upgrade hold back what an older part would mishandle.

Why declared features and not a version comparison: the package version says nothing about
which protocol behaviours a build has (every build of this tree reports the same version until
a release bumps it), and a feature name is a fact both sides can spell alike. An agent lists
its features in ``NodeStatus.agent_features``; an API replica in its registry record
(``controlplane/replicas.py``). A part that lists nothing is older than every feature here.
Pure: no imports.
"""

from __future__ import annotations

from typing import Final

__all__ = ["FEATURES", "IMAGE_COLLECTION", "NETWORK_MAP_DELTAS", "SUBNET_GROWTH"]

#: Further address blocks of an application network on a node: the agent makes a bridge per
#: block (``Container.subnet_index``), the control plane counts every block
#: (``subnetblocks/NODE/APP/NETWORK/K`` in etcd) when it allocates.
SUBNET_GROWTH: Final = "subnet-growth"

#: The agent collects unused registry images and answers ``ccs node prune``
#: (``NodeSpec.prune_requested`` -> ``NodeStatus.prune``).
IMAGE_COLLECTION: Final = "image-collection"

#: The agent applies network map deltas (``NetworkMap.base_version`` != 0) on top of the map it
#: holds; an older agent would take a delta for a whole map and drop every network it omits, so
#: the dispatcher sends it complete maps.
NETWORK_MAP_DELTAS: Final = "network-map-deltas"

#: What this build of ccs does, agent and server alike.
FEATURES: Final[tuple[str, ...]] = (SUBNET_GROWTH, IMAGE_COLLECTION, NETWORK_MAP_DELTAS)
