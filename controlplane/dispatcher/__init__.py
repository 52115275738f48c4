"""The node-agent side of the API (swarmkit's dispatcher).

- :mod:`.hub` turns cache changes into per-node assignment streams: a complete set on
  connect, then increments chained by version (the etcd revision). Status-only changes
  (which the agent itself wrote) are not echoed back.
- :mod:`.servicer` implements Register, Session, Heartbeat and UpdateStatus. A node
  credential is bound to one cluster and one node: it can read only that node's
  assignments and report only that node's containers.
- :mod:`.logs_relay` relays container logs over a channel the agent opens (to every replica),
  since agents can reach the API but the API cannot reach agents.
- :mod:`.liveness` keeps heartbeats in memory: each replica vouches for the nodes it hears with
  one small key per node on a lease of its own; the leader judges liveness from those keys, and
  the Node record is written only when something in it changes (issue 15).
- Register and Heartbeat answers name the API replicas alive (:mod:`controlplane.replicas`), so
  agents fail over among them.
"""
