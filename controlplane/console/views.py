"""What each console page shows, from the protos the API returns: plain rows for the templates.

Pure: no clock (``now`` is an argument), no I/O, no access rules (the API decided what the
caller may see before any of this runs). The templates only lay these rows out.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from google.protobuf.timestamp_pb2 import Timestamp

from ccs import spec_diff
from ccs.durations import age_text
from ccs.models import phase_name
from ccs.release_phases import TERMINAL_PHASES
from ccs.v1 import api_pb2
from ccs.v1 import resources_pb2 as pb

PAGES = ("nodes", "applications", "services", "containers", "releases", "routes", "events", "logs")
"""The pages of a cluster, in the order of the menu."""

#: HAProxy's weight range (a route backend's weight is 0..256; the release API's shift is 0..100).
SHIFT_MAX = 100


def enum_name(value: int, enum: Any, prefix: str) -> str:
    """``NODE_STATE_READY`` -> ``ready``; ``-`` when unset."""
    name = str(enum.Name(value)) if value in enum.values() else str(value)
    return "-" if name == f"{prefix}UNSPECIFIED" else name.removeprefix(prefix).lower().replace("_", "-")


def age(ts: Timestamp, now: float) -> str:
    return age_text(ts.seconds, now)


def labels_text(values: Mapping[str, str]) -> str:
    return ", ".join(f"{k}={v}" for k, v in sorted(values.items())) or "-"


def gib(n: int) -> str:
    return f"{n / 2**30:.1f} GiB" if n else "-"


def cluster_rows(clusters: Iterable[pb.Cluster], now: float) -> list[dict[str, str]]:
    return [{"name": c.meta.name, "labels": labels_text(c.meta.labels), "age": age(c.meta.created_at, now)}
            for c in clusters]


def node_rows(nodes: Iterable[pb.Node], now: float) -> list[dict[str, str]]:
    return [{
        "name": n.meta.name,
        "state": enum_name(n.status.state, pb.NodeState, "NODE_STATE_"),
        "availability": enum_name(n.spec.availability, pb.NodeAvailability, "NODE_AVAILABILITY_"),
        "address": n.status.address or "-",
        "cpus": f"{n.status.capacity.cpus:g}" if n.status.capacity.cpus else "-",
        "memory": gib(n.status.capacity.memory_bytes),
        "labels": labels_text(n.meta.labels),
        "heartbeat": age(n.status.last_heartbeat, now),
        "message": n.status.message,
    } for n in nodes]


def application_rows(apps: Iterable[pb.Application], now: float) -> list[dict[str, str]]:
    return [{
        "name": a.meta.name,
        "phase": a.status.phase or "-",
        "version": a.spec.version or "-",
        "revision": str(a.revision),
        "running": f"{a.status.containers_running}/{a.status.containers_desired}",
        "age": age(a.meta.created_at, now),
        "message": a.status.message,
    } for a in apps]


def service_rows(services: Iterable[pb.Service]) -> list[dict[str, str]]:
    return [{
        "application": s.application,
        "name": s.meta.name,
        "image": s.spec.image or "-",
        "replicas": str(s.spec.replicas),
        "generation": str(s.generation),
        "message": s.status.message,
    } for s in services]


def container_rows(containers: Iterable[pb.Container], now: float) -> list[dict[str, str]]:
    """One row per container; ``reason`` is why it is not running yet (pending, failed) or its
    last message."""
    rows = []
    for c in containers:
        rows.append({
            "name": c.meta.name,
            "application": c.application,
            "service": c.service,
            "node": c.node or "-",
            "state": enum_name(c.status.state, pb.ContainerState, "CONTAINER_STATE_"),
            "address": ", ".join(v for _, v in sorted(c.status.addresses.items())) or "-",
            "age": age(c.status.started_at if c.status.started_at.seconds else c.meta.created_at, now),
            "reason": c.status.message,
        })
    return rows


@dataclass
class ReleaseView:
    application: str
    number: int
    strategy: str
    phase: str
    weight: int
    message: str
    history: list[str] = field(default_factory=list)
    revisions: str = ""
    #: The controls that fit the phase (the API still decides who may use them).
    controls: tuple[str, ...] = ()
    live: bool = False


def controls_for(strategy: str, phase: int) -> tuple[str, ...]:
    """Which buttons make sense in ``phase``: the API refuses the others anyway, this only keeps
    a finished release from showing controls that can do nothing."""
    if phase in TERMINAL_PHASES or phase == pb.RELEASE_PHASE_UNSPECIFIED:
        return ("rollback",)
    if strategy == "blue-green":
        return ("shift", "confirm", "rollback", "abort")
    if strategy == "canary":
        return ("promote", "abort", "rollback")
    return ("abort", "rollback")


#: The API call behind each release control and form of the console (what it calls, not who may:
#: WhoAmI's ``allowed`` says that, from the server's own access policy).
CALLS = {
    "shift": "ReleaseService/ShiftTraffic", "confirm": "ReleaseService/ConfirmRelease",
    "rollback": "ReleaseService/RollbackRelease", "promote": "ReleaseService/PromoteRelease",
    "abort": "ReleaseService/AbortRelease",
    "deploy": "ApplicationService/CreateApplication", "update": "ApplicationService/UpdateApplication",
}
#: Everything: for a release shown where no WhoAmI answer applies (an action's own answer).
EVERY_CALL = frozenset(CALLS.values())


def may(action: str, allowed: Iterable[str]) -> bool:
    """Whether the token may use the console's ``action`` (a key of ``CALLS``), by ``allowed``."""
    return CALLS[action] in allowed


def release_view(r: pb.Release, allowed: Iterable[str] = EVERY_CALL) -> ReleaseView:
    """``allowed``: the calls WhoAmI says the token may make on this application; a control
    whose call is not among them is not shown (the API would refuse it anyway)."""
    allowed = frozenset(allowed)
    return ReleaseView(
        application=r.application, number=r.number, strategy=r.spec.strategy or "rolling",
        phase=phase_name(r.status.phase), weight=r.status.weight, message=r.status.message,
        history=list(r.status.history), revisions=f"{r.spec.from_revision} -> {r.spec.to_revision}",
        controls=tuple(a for a in controls_for(r.spec.strategy, r.status.phase) if may(a, allowed)),
        live=r.status.phase not in TERMINAL_PHASES,
    )


def releases_by_app(releases: Sequence[pb.Release], allowed: Mapping[str, Iterable[str]],
                    ) -> list[tuple[ReleaseView, list[ReleaseView]]]:
    """Per application: its latest release (with the controls ``allowed[app]`` permits) and the
    older ones, newest first."""
    apps: dict[str, list[pb.Release]] = {}
    for r in releases:
        apps.setdefault(r.application, []).append(r)
    out = []
    for name in sorted(apps):
        ordered = sorted(apps[name], key=lambda r: r.number, reverse=True)
        out.append((release_view(ordered[0], allowed.get(name, ())), [release_view(r, ()) for r in ordered[1:]]))
    return out


def route_rows(table: pb.RoutingTable) -> list[dict[str, str]]:
    """One row per backend of each route, with its live weight (HAProxy's 0..256)."""
    rows = []
    for r in table.routes:
        where = f"{r.domain or '*'}{r.path or '/'}"
        for b in r.backends:
            rows.append({"route": where, "application": r.application, "service": r.service,
                         "backend": f"{b.container}@{b.node}", "address": f"{b.address}:{b.port}",
                         "weight": str(b.weight), "group": b.group or "-"})
    return rows


def newest_first(events: Iterable[pb.Event]) -> list[pb.Event]:
    return sorted(events, key=lambda e: (e.meta.created_at.seconds, e.meta.created_at.nanos), reverse=True)


def event_rows(events: Iterable[pb.Event], now: float) -> list[dict[str, str]]:
    """One row per event, in the order given (the page's, newest first)."""
    return [{"age": age(e.meta.created_at, now), "kind": e.kind, "object": e.object, "reason": e.reason,
             "message": e.message} for e in events]


@dataclass
class DiffLine:
    kind: str  # "add" | "del" | "hunk" | "head" | "same"
    text: str


def diff_lines(resp: api_pb2.DiffApplicationResponse) -> list[DiffLine]:
    """The server's diff as classified lines (the CLI's unified diff, without its colours)."""
    out = []
    for line in spec_diff.render(resp, color=False).splitlines():
        if line.startswith(("+++", "---")):
            kind = "head"
        elif line.startswith("+"):
            kind = "add"
        elif line.startswith("-"):
            kind = "del"
        elif line.startswith("@@"):
            kind = "hunk"
        else:
            kind = "same"
        out.append(DiffLine(kind, line))
    return out


def created_lines(app: pb.Application, services: Iterable[pb.ServiceSpec | None] = ()) -> list[DiffLine]:
    """A new application's dry run: everything is an addition."""
    lines = [DiffLine("head", f"+++ {app.meta.name} (new application)"),
             DiffLine("add", f"+ version: {app.spec.version or '-'}")]
    for s in services:
        lines += [DiffLine("add", f"+ {t}") for t in spec_diff.spec_lines(s)]
    return lines


def parse_weight(text: str) -> int:
    """The slider's value: an integer 0..100, or ValueError naming the field."""
    if not text.strip().isdigit() or not 0 <= int(text) <= SHIFT_MAX:
        raise ValueError(f"weight: {text!r} is not a whole number from 0 to {SHIFT_MAX}")
    return int(text)


def parse_params(text: str) -> dict[str, str]:
    """The deploy form's parameters: ``KEY=VALUE`` per line (blank lines and ``#`` comments
    skipped), as ``ccs app deploy --env``; ValueError naming the line otherwise."""
    out: dict[str, str] = {}
    for n, raw in enumerate(text.splitlines(), 1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        key, sep, value = line.partition("=")
        key = key.strip()
        if not sep or not key or not (key[0].isalpha() or key[0] == "_") or not all(
                c.isalnum() or c == "_" for c in key):
            raise ValueError(f"parameters: line {n}: {raw.strip()!r} is not KEY=VALUE (a name of letters, "
                             "digits and '_')")
        out[key] = value
    return out
