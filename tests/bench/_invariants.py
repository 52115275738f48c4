"""Invariants a fresh deploy must keep, checked from the Watch stream as it runs (hollow.py).

Why from the stream and not from a list at the end: a duplicate that is created and later
retired (the reconciler sees two containers in one slot and removes one) leaves no trace in a
final list, but every record the control plane wrote passes through the stream.

- **Never more live containers than replicas for a service.** Live: the record exists and its
  desired state is RUNNING. On a fresh deploy nothing should be replaced, so a service that ever
  had more distinct containers than replicas is reported too, with the events the reconciler
  wrote about those containers (their reasons).
- **Never one container id on two nodes.** A container's id is its identity on its node; a
  record whose node changes is a container placed twice.
"""

from __future__ import annotations

import collections
import re
from dataclasses import dataclass, field

from ccs.v1 import api_pb2
from ccs.v1 import resources_pb2 as pb

LIVE = (pb.DESIRED_STATE_RUNNING, pb.DESIRED_STATE_UNSPECIFIED)
MAX_PRINTED = 20


@dataclass
class Invariants:
    """Feed it every WatchResponse (kinds container and event); read ``violations``."""

    replicas: int  # per service (every service of the benchmark has the same count)
    violations: list[str] = field(default_factory=list)
    # app/svc -> name -> (id, node, desired_state) of the live records
    _live: dict[str, dict[str, str]] = field(default_factory=lambda: collections.defaultdict(dict))
    _names: dict[str, set[str]] = field(default_factory=lambda: collections.defaultdict(set))
    _node_of: dict[str, str] = field(default_factory=dict)  # container id -> first node
    _events: dict[str, list[str]] = field(default_factory=lambda: collections.defaultdict(list))
    _peak_live: dict[str, int] = field(default_factory=dict)

    def feed(self, resp: api_pb2.WatchResponse) -> None:
        touched: set[str] = set()
        for ev in resp.events:
            if ev.HasField("event"):
                e = ev.event
                if e.kind == "container":
                    self._events[e.object].append(f"{e.type} {e.reason}: {e.message}")
                continue
            if not ev.HasField("container"):
                continue
            c = ev.container
            svc = f"{c.application}/{c.service}"
            name = c.meta.name
            touched.add(svc)
            if ev.type == ev.TYPE_DELETE:
                self._live[svc].pop(name, None)
                continue
            self._names[svc].add(name)
            if c.node:
                first = self._node_of.setdefault(c.meta.id, c.node)
                if first != c.node:
                    self._violation(f"container {svc}/{name} (id {c.meta.id[:12]}) on two nodes: "
                                    f"{first} and then {c.node} (revision {ev.revision})")
            if c.desired_state in LIVE:
                self._live[svc][name] = c.meta.id
            else:
                self._live[svc].pop(name, None)
        for svc in touched:
            n = len(self._live[svc])
            if n > self._peak_live.get(svc, 0):
                self._peak_live[svc] = n
                if n > self.replicas:
                    self._violation(f"service {svc}: {n} live containers for {self.replicas} replicas "
                                    f"(revision {resp.revision})")

    def _violation(self, message: str) -> None:
        if len(self.violations) < MAX_PRINTED:
            print(f"  INVARIANT VIOLATED: {message}", flush=True)
        self.violations.append(message)

    def replaced(self) -> dict[str, int]:
        """Services that had more distinct containers than replicas: how many more."""
        return {svc: len(names) - self.replicas for svc, names in sorted(self._names.items())
                if len(names) > self.replicas}

    def report(self) -> list[str]:
        """Lines for the end of the run: violations and replacements, with their reasons."""
        out = []
        extra = self.replaced()
        if extra:
            out.append(f"  {sum(extra.values())} containers beyond the replicas in {len(extra)} services "
                       "(a fresh deploy replaces nothing); reasons from their events:")
            reasons: collections.Counter[str] = collections.Counter()
            for svc in extra:
                for name in self._names[svc]:
                    for line in self._events.get(f"{svc}/{name}", ["(no event)"]):
                        reasons[re.sub(r"[0-9a-f]*[0-9][0-9a-f.]*", "N", line)[:110]] += 1
            out += [f"    {n:6d}  {why}" for why, n in reasons.most_common(10)]
        if self.violations:
            out.append(f"  {len(self.violations)} invariant violations (first {MAX_PRINTED} printed above)")
        return out
