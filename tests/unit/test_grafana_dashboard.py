"""The Grafana dashboard (deploy/grafana/ccs.json) uses only series the code registers, and every
ccs series appears in it. HAProxy's series are checked against a real HAProxy's exporter in
``tests/integration/test_metrics_router.py``."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from prometheus_client import CollectorRegistry

from controlplane.metrics import ServerMetrics
from controlplane.metrics.series import STATE_SERIES
from nodeagent.metrics import AgentMetrics

DASHBOARD = Path(__file__).parents[2] / "deploy" / "grafana" / "ccs.json"
SERIES = re.compile(r"(?<![$\w])((?:ccs|haproxy)_[a-z0-9_]+)\b")  # not a $variable
_SUFFIXES = {"counter": ("_total",), "histogram": ("_bucket", "_count", "_sum"), "gauge": ("",)}


def exprs(panels: list[dict[str, Any]]) -> Iterator[tuple[str, str]]:
    for panel in panels:
        yield from exprs(panel.get("panels", []))
        for target in panel.get("targets", []):
            yield panel["title"], target["expr"]


def dashboard_series(prefix: str) -> set[str]:
    board = json.loads(DASHBOARD.read_text())
    return {name for _, e in exprs(board["panels"]) for name in SERIES.findall(e) if name.startswith(prefix)}


def registered(registry: CollectorRegistry) -> dict[str, str]:
    """Every sample name the registry's families can have -> the family's name."""
    out: dict[str, str] = {}
    for family in registry.collect():
        for suffix in _SUFFIXES.get(family.type, ("",)):
            out[family.name + suffix] = family.name
    return out


def all_registered() -> dict[str, str]:
    names = registered(ServerMetrics().registry) | registered(AgentMetrics().registry)
    return names | {n: n for n in STATE_SERIES}


def test_every_panel_has_a_query_naming_a_series() -> None:
    board = json.loads(DASHBOARD.read_text())
    found = list(exprs(board["panels"]))
    assert found
    for title, expr in found:
        assert SERIES.search(expr), f"{title}: {expr}"


def test_every_ccs_series_in_the_dashboard_is_registered() -> None:
    unknown = dashboard_series("ccs_") - set(all_registered())
    assert not unknown, f"the dashboard names series the code does not register: {sorted(unknown)}"


def test_every_registered_ccs_series_is_on_the_dashboard() -> None:
    used = {all_registered()[n] for n in dashboard_series("ccs_")}
    missing = set(all_registered().values()) - used
    assert not missing, f"registered but not on the dashboard: {sorted(missing)}"
