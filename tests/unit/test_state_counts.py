"""The metrics' state series come from counts the informer keeps per change
(controlplane.state_counts), so a scrape never walks the containers, and the counts stay equal
to a count over the records as containers and releases come, change and go."""

from __future__ import annotations

import random
from collections import Counter
from typing import Any

from prometheus_client.core import Metric

from ccs.v1 import resources_pb2 as pb
from controlplane.metrics.state import StateSources, _families
from controlplane.scheduler.pending import PENDING_KINDS, pending_kind
from controlplane.store import keys
from tests.unit.reconcile_helpers import C, Cluster

STATES = [pb.CONTAINER_STATE_PENDING, pb.CONTAINER_STATE_ASSIGNED, pb.CONTAINER_STATE_RUNNING,
          pb.CONTAINER_STATE_FAILED, pb.CONTAINER_STATE_EXITED]
MESSAGES = ["", "no node has 2 CPUs free (1 node: 1 has 0.5 CPUs free)", "no ready node (1 node: 1 down)",
            "waits for its node n2", "something else"]
PHASES = [pb.RELEASE_PHASE_PROGRESSING, pb.RELEASE_PHASE_SUCCEEDED, pb.RELEASE_PHASE_ROLLED_BACK]


def recount(cluster: Cluster) -> dict[str, Any]:
    """The series as the scrape used to count them: over every record."""
    states: Counter[str] = Counter()
    pending: Counter[str] = Counter()
    releases: Counter[tuple[str, str]] = Counter()
    for c in cluster.state.containers.values():
        states[pb.ContainerState.Name(c.status.state).removeprefix("CONTAINER_STATE_").lower()] += 1
        if c.status.state == pb.CONTAINER_STATE_PENDING and c.desired_state == pb.DESIRED_STATE_RUNNING:
            pending[pending_kind(c.status.message)] += 1
    for r in cluster.state.releases.values():
        releases[(r.spec.strategy or "rolling", pb.ReleasePhase.Name(r.status.phase)
                  .removeprefix("RELEASE_PHASE_").lower())] += 1
    return {"states": states, "pending": pending, "releases": releases}


def counted(cluster: Cluster) -> dict[str, Any]:
    counts = cluster.state.counts
    return {"states": counts.containers, "pending": counts.pending, "releases": counts.releases}


class NotWalked(dict[Any, Any]):
    """A cluster's containers, refusing to be walked: a scrape must not."""

    def values(self) -> Any:
        raise AssertionError("the scrape walked the containers")

    def __iter__(self) -> Any:
        raise AssertionError("the scrape walked the containers")


def scrape(cluster: Cluster) -> dict[str, dict[tuple[str, ...], float]]:
    cluster.state.containers = NotWalked(cluster.state.containers)
    try:
        families: list[Metric] = _families(StateSources(cluster.informer, lambda: 0, lambda: 0, lambda: False))
    finally:
        cluster.state.containers = dict(cluster.state.containers)
    return {f.name: {tuple(s.labels.values()): s.value for s in f.samples} for f in families}


def test_counts_follow_containers_and_releases_as_they_come_change_and_go() -> None:
    rng = random.Random(7)
    cluster = Cluster()
    names = [f"web-{i}" for i in range(12)]
    for step in range(300):
        name = rng.choice(names)
        key = keys.container(C, "shop", "web", name)
        if rng.random() < 0.2:
            if key in cluster.stored:
                cluster.delete(key)
        elif rng.random() < 0.15:
            r = pb.Release(spec=pb.ReleaseSpec(strategy=rng.choice(["", "rolling", "canary"])),
                           status=pb.ReleaseStatus(phase=rng.choice(PHASES)))
            rkey = keys.release(C, "shop", rng.randrange(4))
            if rng.random() < 0.3 and rkey in cluster.stored:
                cluster.delete(rkey)
            else:
                cluster.put(rkey, r)
        else:
            c = pb.Container(cluster=C, application="shop", service="web", node=rng.choice(["", "n1"]),
                             desired_state=rng.choice([pb.DESIRED_STATE_RUNNING, pb.DESIRED_STATE_REMOVED]))
            c.meta.name, c.meta.id = name, f"{name}-{step}"
            c.status.state = rng.choice(STATES)
            c.status.message = rng.choice(MESSAGES)
            cluster.put(key, c)
        assert counted(cluster) == recount(cluster), f"step {step}"
    want = recount(cluster)
    got = scrape(cluster)
    assert got["ccs_containers"] == {(s,): float(n) for s, n in want["states"].items()}
    assert got["ccs_containers_pending"] == {(k,): float(want["pending"].get(k, 0)) for k in PENDING_KINDS}
    assert got["ccs_releases"] == {k: float(n) for k, n in want["releases"].items()}
    for key in list(cluster.stored):
        if key.startswith(keys.subtree(C) + "containers/"):
            cluster.delete(key)
    assert not cluster.state.counts.containers and not cluster.state.counts.pending  # no zero series left
    assert scrape(cluster)["ccs_containers"] == {}


async def test_a_relisted_informer_counts_what_is_stored() -> None:
    cluster = Cluster()
    for i, state in enumerate(STATES):
        c = pb.Container(cluster=C, application="shop", service="web", desired_state=pb.DESIRED_STATE_RUNNING)
        c.meta.name, c.meta.id = f"web-{i}", f"id-{i}"
        c.status.state = state
        cluster.put(keys.container(C, "shop", "web", f"web-{i}"), c)
    before = counted(cluster)
    await cluster.relist()
    assert counted(cluster) == before == recount(cluster)
