"""The node-agent side of the API (swarmkit's dispatcher).

- :mod:`.hub` turns cache changes into per-node assignment streams: a complete set on
  connect, then increments chained by version (the etcd revision). Status-only changes
  (which the agent itself wrote) are not echoed back.
- :mod:`.servicer` implements Register, Session, Heartbeat and UpdateStatus. A node
  credential is bound to one cluster and one node: it can read only that node's
  assignments and report only that node's containers.
- :mod:`.logs_relay` relays container logs over a channel the agent opens (to every replica),
  since agents can reach the API but the API cannot reach agents.
- Register and Heartbeat answers name the API replicas alive (:mod:`controlplane.replicas`), so
  agents fail over among them.
"""
