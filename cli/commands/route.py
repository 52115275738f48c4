"""``ccs route ls``: the cluster's routing table as every node's router applies it.

One row per backend (container), the route's columns repeated, so ``awk``/``grep`` on the
plain output see whole rows; a route with no ready backend still gets a row (``-``), since
"my domain has no backend" is exactly what this command is for.
"""

from __future__ import annotations

import typer

from ccs.v1 import resources_pb2
from cli.output import TABLE, NoHeadersOpt, OutputOpt, render, table
from cli.session import ClusterOpt, session

app = typer.Typer(help="Inspect HTTP routes and their backends.", no_args_is_help=True)

HEADERS = ("DOMAIN", "PATH", "SERVICE", "BACKEND", "ADDRESS", "WEIGHT", "GROUP", "MATCH")


def match_text(route: resources_pb2.RouteEntry) -> str:
    """The A/B rule (``header X-Beta=1`` / ``cookie beta=1``), ``-`` when weights decide."""
    if route.match_header:
        return f"header {route.match_header}={route.match_value}"
    if route.match_cookie:
        return f"cookie {route.match_cookie}={route.match_value}"
    return "-"


def rows(routing: resources_pb2.RoutingTable) -> list[list[str]]:
    out: list[list[str]] = []
    for r in routing.routes:
        head = [r.domain or "*", r.path or "/", f"{r.application}/{r.service}"]
        if r.session_sticky:
            head[2] += " (sticky)"
        if r.HasField("tls"):  # served over HTTPS with this secret version's certificate
            head[0] += f" (tls {r.tls.secret}@{r.tls.version})"
        for b in r.backends:
            out.append([*head, f"{b.container}@{b.node}", f"{b.address}:{b.port}", str(b.weight),
                        b.group or "-", match_text(r)])
        if not r.backends:
            out.append([*head, "-", "-", "-", "-", match_text(r)])
    return out


@app.command("ls")
def ls(ctx: typer.Context, cluster: ClusterOpt = None, output: OutputOpt = TABLE,
       no_headers: NoHeadersOpt = False) -> None:
    """List routes: domain (with its certificate's secret version when HTTPS), path, service,
    backends (container@node address:port), weights (HAProxy's 0..256; 0 is draining) and the
    A/B match."""
    s = session(ctx)
    c = s.cluster(cluster)
    routing = s.run(lambda cl: cl.routes.list(c))
    if render(routing, output):
        return
    table(HEADERS, rows(routing), no_headers=no_headers)
