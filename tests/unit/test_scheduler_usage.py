"""``Usage`` (the informer's per-change sums) gives a view the same placements as the records.

Issue 15: a view built from every container record cost O(containers) per pass; built from
``Usage`` it costs O(nodes). The table cases of ``test_scheduler.py`` run both ways here, and a
history of changes (moves, retirements, deletions, ports claimed twice) must leave the same
sums as the final records alone.
"""

from __future__ import annotations

import copy

import pytest

from ccs.v1 import resources_pb2 as pb
from controlplane.scheduler import ClusterView, ServiceRef
from controlplane.scheduler.usage import Usage

from .test_scheduler import MIXED, PLACEMENT_CASES, Case, mixed_cluster
from .test_scheduler_helpers import container, names, spec


def usage_of(containers: list[pb.Container]) -> Usage:
    u = Usage()
    for c in containers:
        u.apply(None, c)
    return u


@pytest.mark.parametrize("case", PLACEMENT_CASES.values(), ids=PLACEMENT_CASES.keys())
def test_a_view_from_usage_places_as_a_view_from_the_records(case: Case) -> None:
    svc = ServiceRef("app", "web", case.spec)
    from_records = ClusterView(case.nodes, case.containers).place(svc, names(case.pending))
    from_usage = ClusterView(case.nodes, usage=usage_of(case.containers)).place(svc, names(case.pending))
    assert from_usage == from_records


def history() -> tuple[list[tuple[pb.Container | None, pb.Container | None]], list[pb.Container]]:
    """(old, new) changes and the records they leave."""
    web = [container(f"web-{i}", f"a{i % 3}", service="web", of=MIXED) for i in range(6)]
    db = container("db-1", "b0", service="db", of=spec(cpus=1, ports=[(9000, "tcp")]))
    twin = container("db-2", "b0", service="db", of=spec(cpus=1, ports=[(9000, "tcp")]))  # same port
    changes: list[tuple[pb.Container | None, pb.Container | None]] = [(None, c) for c in [*web, db, twin]]
    moved = copy.deepcopy(web[0])
    moved.node = "c0"
    retired = copy.deepcopy(web[1])
    retired.desired_state = pb.DESIRED_STATE_REMOVED
    changes += [(web[0], moved), (web[1], retired), (web[2], None), (twin, None)]
    final = [moved, retired, *web[3:], db]
    return changes, final


def test_a_history_of_changes_leaves_the_sums_of_the_final_records() -> None:
    changes, final = history()
    u = Usage()
    for old, new in changes:
        u.apply(old, new)
    fresh = usage_of(final)
    assert u.counts == fresh.counts
    assert {n: (x.cpus, x.memory, x.containers, dict(x.ports)) for n, x in u.nodes.items()} == \
        {n: (x.cpus, x.memory, x.containers, dict(x.ports)) for n, x in fresh.nodes.items()}
    assert dict(u.nodes["b0"].ports) == {(9000, "tcp"): 1}  # the twin's claim went, db's stays
    svc = ServiceRef("app", "web", MIXED)
    assert ClusterView(mixed_cluster(), usage=u).place(svc, names(9)) == \
        ClusterView(mixed_cluster(), final).place(svc, names(9))


def test_placing_in_a_view_never_changes_the_usage_it_started_from() -> None:
    changes, _ = history()
    u = Usage()
    for old, new in changes:
        u.apply(old, new)
    before = (copy.deepcopy(u.counts), {n: (x.cpus, x.containers, dict(x.ports)) for n, x in u.nodes.items()})
    view = ClusterView(mixed_cluster(), usage=u)
    view.place(ServiceRef("app", "web", MIXED), names(5))
    view.place(ServiceRef("app", "db", spec(cpus=1, ports=[(9000, "tcp")])), ["db-9"])
    assert (u.counts, {n: (x.cpus, x.containers, dict(x.ports)) for n, x in u.nodes.items()}) == before
