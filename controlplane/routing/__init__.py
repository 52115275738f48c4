"""The cluster's HTTP routing table, computed purely from the records in etcd.

Every node's router (HAProxy, supervised by the agent) needs the same table; computing it as a
pure function of services, containers and releases means any API server derives the same table
with the same content-hash version, so no one has to store it and agents can report which version
they applied (``RouterStats.routing_version``). Traffic splits for releases are integer HAProxy
weights (:func:`weights`), so moving traffic is a runtime-API weight change, never a reload.
"""

from .table import routing_table, table_version
from .weights import FULL, MAX_WEIGHT, share, weights

__all__ = ["FULL", "MAX_WEIGHT", "routing_table", "share", "table_version", "weights"]
