"""``routing_table``: the whole cluster's routes as a pure function of services, containers and
releases, so every API server computes the same table and the same version.

* One RouteEntry per (service, route), sorted by application, service, domain, path and port;
  backends sorted by group then container id. Same input, same bytes, same version.
* Backends: containers with an endpoint for the route's container port that are ready (HEALTHY, or
  RUNNING without a health check) and desired RUNNING. Containers on their way out (not desired
  RUNNING, or ``stop_after`` set) that still run are kept **with weight 0**: the router stops
  sending them new requests at once, with a runtime weight change rather than a reload.
* Groups: while a blue-green or canary release of the service is running, its new generation is
  "green"/"canary" and everything else "stable"; the release's ``status.weight`` percent goes to the
  new group (see :func:`weights`). Otherwise every ready server is "stable" with equal weight.
* A/B canary: ``match_header``/``match_cookie``/``match_value`` are copied to the entry and both
  groups keep full weight (the router splits by the match) until the release completes (weight
  100) or rolls back, when the match is dropped and the weights decide.
* HTTPS: a route's ``tls`` (a certificate's secret version) is copied to its entry, so a new
  version changes the table (and its version) and every router replaces the certificate.
* ``version``: :func:`controlplane.content_version.content_version` of the table (never 0).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping

from ccs.container_states import RUNNING_STATES
from ccs.v1 import resources_pb2 as pb
from controlplane.content_version import content_version
from controlplane.planner.containers import is_leaving, is_ready
from controlplane.release.model import GROUP_STABLE, is_ab, is_new, new_group, splits_traffic

from .weights import FULL, weights

SvcKey = tuple[str, str]


def routing_table(
    cluster: str,
    services: Mapping[SvcKey, pb.Service],
    containers: Iterable[pb.Container],
    releases: Mapping[str, pb.Release | None],
) -> pb.RoutingTable:
    """The routing table of ``cluster``.

    ``services``: every service by (application, service). ``containers``: every container record
    of the cluster (others are ignored). ``releases``: each application's latest release (or None).
    """
    by_service: dict[SvcKey, list[pb.Container]] = defaultdict(list)
    for c in containers:
        if c.cluster and c.cluster != cluster:
            continue
        by_service[(c.application, c.service)].append(c)
    table = pb.RoutingTable(cluster=cluster)
    for (app, svc), service in sorted(services.items()):
        release = releases.get(app)
        active = release if splits_traffic(release) and release and svc in release.spec.services else None
        seen: set[tuple[str, str, int]] = set()
        for route in sorted(service.spec.routes, key=lambda r: (r.domain, r.path or "/", r.port)):
            ident = (route.domain, route.path or "/", route.port)
            if ident in seen:
                continue
            seen.add(ident)
            table.routes.append(_entry(app, svc, service, route, by_service[(app, svc)], active))
    table.version = table_version(table)
    return table


def table_version(table: pb.RoutingTable) -> int:
    """A content hash of ``table`` ignoring its current version: stable across processes."""
    return content_version(table)


def _entry(
    app: str,
    svc: str,
    service: pb.Service,
    route: pb.Route,
    containers: list[pb.Container],
    release: pb.Release | None,
) -> pb.RouteEntry:
    entry = pb.RouteEntry(
        application=app,
        service=svc,
        domain=route.domain,
        path=route.path or "/",
        session_sticky=service.spec.session_sticky,
    )
    if route.HasField("tls"):
        entry.tls.CopyFrom(route.tls)  # only the reference: the dispatcher adds the material
    serving: list[tuple[pb.Container, pb.Endpoint, str]] = []
    draining: list[tuple[pb.Container, pb.Endpoint, str]] = []
    for c in sorted(containers, key=lambda c: c.meta.id):
        ep = _endpoint(c, route.port)
        if ep is None:
            continue
        group = new_group(release) if release is not None and is_new(release, c) else GROUP_STABLE
        if is_leaving(c):
            if c.status.state in RUNNING_STATES:
                draining.append((c, ep, group))
        elif is_ready(c, service.spec):
            serving.append((c, ep, group))
        elif c.status.state in RUNNING_STATES:
            # Running but not (or no longer) ready: configured with weight 0, so a health
            # flip is a runtime-API weight change on every router, never a reload.
            draining.append((c, ep, group))
    by_group: dict[str, int] = {}
    if release is None:
        by_group = {GROUP_STABLE: FULL}
    else:
        ng = new_group(release)
        n_new = sum(1 for _, _, g in serving if g == ng)
        n_old = len(serving) - n_new
        pct = min(int(release.status.weight), 100)
        ab = is_ab(release) and pct < 100 and release.status.phase != pb.RELEASE_PHASE_ROLLING_BACK
        if ab:
            spec = release.spec
            entry.match_header, entry.match_cookie = spec.match_header, spec.match_cookie
            entry.match_value = spec.match_value
            by_group = {ng: FULL, GROUP_STABLE: FULL}
        else:
            w_new, w_old = weights(pct, n_new, n_old)
            by_group = {ng: w_new, GROUP_STABLE: w_old}
    rows = [(c, ep, g, by_group.get(g, 0)) for c, ep, g in serving]
    rows += [(c, ep, g, 0) for c, ep, g in draining]
    for c, ep, group, weight in sorted(rows, key=lambda r: (r[2], r[0].meta.id)):
        entry.backends.append(
            pb.RouteBackend(
                container=c.meta.id,
                node=c.node,
                address=ep.address,
                port=ep.published,
                weight=weight,
                app_revision=c.app_revision,
                spec_generation=c.spec_generation,
                group=group,
            )
        )
    return entry


def _endpoint(c: pb.Container, port: int) -> pb.Endpoint | None:
    """The published endpoint of the container port ``port`` (TCP first); port 0: the first one."""
    candidates = [e for e in c.status.endpoints if e.published and (port == 0 or e.target == port)]
    candidates.sort(key=lambda e: (e.protocol not in ("", "tcp"), e.target, e.published))
    return candidates[0] if candidates else None
