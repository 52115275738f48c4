"""A pending container's reason, as one of a fixed set of kinds (the label of ``ccs_containers_pending``).

The scheduler's reason is a sentence for people (``no node has 2 CPUs free (3 nodes: 2 drained,
1 has 0.5 CPUs free)``); as a label it would make one series per wording. Its headline says which
filter left nothing, and that is the kind. The headlines are written in
:mod:`controlplane.scheduler.reasons`, the home-node wait in :mod:`controlplane.reconcile.container_diff`
and the pod-range refusal in :mod:`controlplane.reconcile.subnets`; ``tests/unit/test_metrics_pending.py``
builds real ones through the scheduler so a changed wording fails there, not silently here.
Pure: no I/O. It sits beside the headlines it reads (not in ``controlplane.metrics``) because the
informer counts pending containers by kind as they change (:mod:`controlplane.state_counts`).
"""

from __future__ import annotations

PENDING_KINDS = (
    "no_nodes",
    "no_ready_node",
    "constraints",
    "max_replicas",
    "ports",
    "cpu",
    "memory",
    "waits_for_node",
    "pod_range_full",
    "unscheduled",
    "other",
)

# (prefix of the message, kind), the first match wins.
_PREFIXES = (
    ("no nodes in the cluster", "no_nodes"),
    ("no ready node", "no_ready_node"),
    ("no node satisfies", "constraints"),
    ("every eligible node already runs", "max_replicas"),
    ("every eligible node already uses one of ports", "ports"),
    ("waits for its node", "waits_for_node"),
    ("the cluster's pod range", "pod_range_full"),
)


def pending_kind(message: str) -> str:
    """The kind of a pending container's ``status.message`` (one of :data:`PENDING_KINDS`)."""
    if not message:
        return "unscheduled"
    for prefix, kind in _PREFIXES:
        if message.startswith(prefix):
            return kind
    if message.startswith("port ") and " is taken on every eligible node" in message:
        return "ports"
    if message.startswith("no node has "):
        headline = message.split(" (", 1)[0]
        return "memory" if headline.endswith(" memory free") else "cpu"
    return "other"
