"""A pending container's reason becomes one bounded label kind (``ccs_containers_pending{reason}``).

The reasons are made by the real scheduler (the cases of ``test_scheduler_reasons``), so a change
of wording there fails here instead of turning every pending container into ``other``.
"""

from __future__ import annotations

import pytest

from controlplane.metrics import PENDING_KINDS, pending_kind
from controlplane.scheduler import ServiceRef, place

from .test_scheduler_reasons import REASONS, Why

KIND_OF_CASE = {
    "no nodes": "no_nodes",
    "none ready": "no_ready_node",
    "never reported": "no_ready_node",
    "label constraint": "constraints",
    "label != constraint": "constraints",
    "role constraint": "constraints",
    "hostname constraint does not list every hostname": "constraints",
    "two constraints, each node counted once": "constraints",
    "many reasons are summed up": "constraints",
    "cpu, naming the deepest filter": "cpu",
    "cpu taken by live containers": "cpu",
    "memory": "memory",
    "memory in GiB": "memory",
    "port": "ports",
    "several ports": "ports",
    "max replicas per node, after placing some": "max_replicas",
    "global service on every node already": "max_replicas",
}


def test_every_scheduler_case_has_a_kind() -> None:
    assert set(KIND_OF_CASE) == set(REASONS)


@pytest.mark.parametrize("case", sorted(REASONS))
def test_a_scheduler_reason_has_its_kind(case: str) -> None:
    why: Why = REASONS[case]
    result = place(ServiceRef("app", "web", why.spec), [f"web-{i}" for i in range(why.pending)], why.nodes,
                   why.containers)
    [reason] = set(result.unplaced.values())
    assert pending_kind(reason) == KIND_OF_CASE[case]


@pytest.mark.parametrize(("message", "kind"), [
    ("", "unscheduled"),
    ("waits for its node n1: no ready node (1 node: 1 down)", "waits_for_node"),
    ("the cluster's pod range 10.0.0.0/16 has no free subnet left for shop on n1", "pod_range_full"),
    ("something new", "other"),
])
def test_reasons_written_outside_the_scheduler(message: str, kind: str) -> None:
    assert pending_kind(message) == kind


def test_kinds_are_a_fixed_set() -> None:
    assert set(KIND_OF_CASE.values()) | {"waits_for_node", "pod_range_full", "unscheduled", "other"} == set(
        PENDING_KINDS)
