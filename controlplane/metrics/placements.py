"""Placements counted from the cache: a container record that gained a node.

Counted from what etcd committed (the informer's changes), not from the scheduler's answers: a
pass whose chunk meets a conflict plans placements that never land, and counting those would
count them again when the pass is replanned. Only the leader counts, so the sum over replicas
is the cluster's figure (each replica's cache sees every placement).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from prometheus_client import Counter

from controlplane.informer import Change


def placed(changes: Sequence[Change]) -> int:
    """How many of ``changes`` put a container on a node (a new record with a node, or one that had none)."""
    n = 0
    for ch in changes:
        if ch.kind != "container" or ch.new is None or not ch.new.node:
            continue
        if ch.old is None or not ch.old.node:
            n += 1
    return n


def counting_placements(counter: Counter, is_leader: Callable[[], bool]) -> Callable[[list[Change]], None]:
    """An informer listener that adds the placements of each batch to ``counter`` while leading."""

    def on_changes(changes: list[Change]) -> None:
        if is_leader():
            n = placed(changes)
            if n:
                counter.inc(n)

    return on_changes
