"""Sum the routers' per-container counters into the two numbers the canary analysis needs."""

from __future__ import annotations

from collections.abc import Iterable

from ccs.v1 import resources_pb2 as pb

from .model import ReleaseStats, is_new


def release_stats(
    release: pb.Release, containers: Iterable[pb.Container], router_stats: Iterable[pb.RouterStats]
) -> ReleaseStats:
    """Counters of the release's changed services, split into the new generation and the rest.

    ``containers``: the application's container records (to learn each container's generation;
    counters of containers no longer on record are dropped, they cannot be attributed).
    ``router_stats``: the latest report of every node; a container served by several nodes'
    routers is summed across them.
    """
    changed = set(release.spec.services)
    side: dict[str, bool] = {
        c.meta.id: is_new(release, c) for c in containers if c.service in changed
    }
    new_req = new_err = old_req = old_err = 0
    for report in router_stats:
        for b in report.backends:
            if b.application != release.application or b.container not in side:
                continue
            errors = b.responses_5xx + b.connection_errors
            if side[b.container]:
                new_req, new_err = new_req + b.requests, new_err + errors
            else:
                old_req, old_err = old_req + b.requests, old_err + errors
    return ReleaseStats(new_req, new_err, old_req, old_err)
