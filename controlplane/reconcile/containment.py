"""Failures that belong to one object: its own backoff, reported once.

A cluster is reconciled in one pass over one snapshot (that is what keeps a burst of
status reports cheap), but a failure must not be the cluster's: as in controller-runtime,
where each object is its own work item, a service or release whose planning raises one of
:data:`PLAN_ERRORS` is set aside for that pass alone, while every other object's writes
still commit. It is then retried with its own exponential backoff (1 s, 2 s, 4 s, ... up
to 5 min; the work queue's backoff stays for what fails the whole pass, such as etcd being
unreachable), and at once when its own input changes (a new spec, an operator request):
an edit that fixes it should not wait out a long delay. A success forgets the failure.

These errors mean bad input (see :class:`~controlplane.planner.PlanError`), so retrying the
same input gives the same answer; the backoff is still worth having because a service's
planning also reads what it does not own (its dependencies, its containers' records), and
those can heal by themselves.

Reporting is once per distinct message: the pass writes the message into the object's
status (which survives a leader change, so a new leader does not report it again) and a
warning event only when the stored message differs; an object without a record to hold
the message (a record that does not decode, a service already deleted) is remembered
here, in memory, so a new leader reports it once more.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from ccs.v1 import resources_pb2 as pb
from controlplane.informer import ClusterState, SvcKey, Undecodable
from controlplane.planner import PlanError
from controlplane.release import ReleaseError
from controlplane.scheduler import InvalidSpecError

PLAN_ERRORS: tuple[type[Exception], ...] = (PlanError, ReleaseError, InvalidSpecError)

# ("service" | "release", application, service or release name)
ObjKey = tuple[str, str, str]

BASE_DELAY = 1.0
MAX_DELAY = 300.0


@dataclass(frozen=True)
class Failed:
    """What one pass learned about an object that failed: why, and the input it failed on."""

    message: str
    fingerprint: bytes


@dataclass
class _Failure:
    attempts: int
    retry_at: float
    fingerprint: bytes
    message: str


def backoff(attempts: int) -> float:
    """The delay after ``attempts`` consecutive failures (no jitter: one leader retries)."""
    return float(min(BASE_DELAY * 2.0 ** (attempts - 1), MAX_DELAY))


@dataclass
class ClusterFailures:
    """The failing objects of one cluster, and what was already reported.

    ``now`` is a monotonic time in seconds; passes read this, the orchestrator updates it
    with :meth:`record` once the pass has committed.
    """

    _failing: dict[ObjKey, _Failure] = field(default_factory=dict)
    _reported: dict[ObjKey, str] = field(default_factory=dict)
    # (etcd key, mod_revision) of the undecodable records already reported.
    _undecodable: set[tuple[str, int]] = field(default_factory=set)

    def failing(self, obj: ObjKey) -> bool:
        """Cheap: is ``obj`` failing at all (before computing its fingerprint)?"""
        return obj in self._failing

    def blocked(self, obj: ObjKey, fingerprint: bytes, now: float) -> bool:
        """True while ``obj`` waits out its backoff on the same input it failed on."""
        f = self._failing.get(obj)
        return f is not None and f.fingerprint == fingerprint and now < f.retry_at

    def attempts(self, obj: ObjKey) -> int:
        f = self._failing.get(obj)
        return f.attempts if f is not None else 0

    def retry_at(self, obj: ObjKey) -> float | None:
        f = self._failing.get(obj)
        return f.retry_at if f is not None else None

    def due(self, kind: str, now: float) -> set[tuple[str, str]]:
        """(app, name) of the failing objects of ``kind`` whose backoff is over."""
        return {(a, n) for (k, a, n), f in self._failing.items() if k == kind and f.retry_at <= now}

    def next_retry(self, now: float) -> float | None:
        """Seconds until the earliest retry still ahead, if any.

        Only future ones: an object already due is retried by the next pass whatever wakes
        it, and one that is not planned any more must not make the cluster spin.
        """
        ahead = [f.retry_at - now for f in self._failing.values() if f.retry_at > now]
        return min(ahead) if ahead else None

    def was_reported(self, obj: ObjKey, message: str) -> bool:
        return self._reported.get(obj) == message

    def undecodable_reported(self, key: str, mod_revision: int) -> bool:
        return (key, mod_revision) in self._undecodable

    def record(
        self,
        now: float,
        *,
        failed: dict[ObjKey, Failed],
        succeeded: set[ObjKey],
        undecodable: set[tuple[str, int]],
        live_undecodable: set[tuple[str, int]],
        active_releases: set[ObjKey],
    ) -> None:
        """Fold in a committed pass: failures back off further, successes are forgotten.

        So are releases that are no longer active (superseded, deleted): they will not be
        planned again, so nothing else would ever clear them.
        """
        for obj in [o for o in self._failing if o[0] == "release" and o not in active_releases]:
            del self._failing[obj]
            self._reported.pop(obj, None)
        for obj, why in failed.items():
            prior = self._failing.get(obj)
            attempts = prior.attempts + 1 if prior is not None else 1
            self._failing[obj] = _Failure(attempts, now + backoff(attempts), why.fingerprint, why.message)
            self._reported[obj] = why.message
        for obj in succeeded:
            self._failing.pop(obj, None)
            self._reported.pop(obj, None)
        # Keep only records that are still bad: a rewrite that breaks it again is news.
        self._undecodable = (self._undecodable | undecodable) & live_undecodable


@dataclass(frozen=True)
class Held:
    """What a pass must not plan because a record it depends on does not decode.

    Planning from the informer's last good copy would fight what is really stored (and every
    guarded write would conflict); planning as if the record were absent would retire a
    service's containers, or a whole application's. So the object waits for the record to be
    rewritten or deleted.
    """

    apps: set[str]
    services: set[SvcKey]
    releases: set[str]  # applications whose releases are not planned
    nodes: set[str]

    @classmethod
    def of(cls, state: ClusterState) -> Held:
        held = cls(set(), set(), set(), set())
        for bad in state.undecodable.values():
            if bad.kind == "application":
                held.apps.add(bad.path[0])
            elif bad.kind in ("service", "container"):
                held.services.add((bad.path[0], bad.path[1]))
            elif bad.kind == "release":
                held.releases.add(bad.path[0])
            elif bad.kind == "node":
                held.nodes.add(bad.path[0])
        return held


_HELD = {
    "application": "the application is not reconciled",
    "service": "the service is not reconciled",
    "container": "its service is not reconciled",
    "release": "the application's releases do not progress",
    "node": "the node's state is not updated",
}


def undecodable_message(bad: Undecodable) -> str:
    held = _HELD.get(bad.kind, "it is ignored")
    return (f"the record at {bad.key} does not decode ({bad.error}); {held} until it is "
            "rewritten or deleted")


def service_fingerprint(state: ClusterState, app: str, svc: str) -> bytes:
    """A service's own input: a change here retries it at once, whatever its backoff."""
    service = state.services.get((app, svc))
    application = state.apps.get(app)
    return b"|".join((
        service.spec.SerializeToString(deterministic=True) if service else b"-",
        application.spec.SerializeToString(deterministic=True) if application else b"-",
    ))


def release_fingerprint(release: pb.Release) -> bytes:
    """A release's own input: its spec and the operator's pending requests."""
    return release.spec.SerializeToString(deterministic=True) + b"|" + "\n".join(
        release.status.requests).encode()
