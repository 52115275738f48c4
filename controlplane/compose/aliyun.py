"""Alibaba Cloud Container Service labels, accepted as aliases of ccs settings.

Templates written for Aliyun's (Swarm-based) service put scaling, probes and HTTP routing in
service labels. ccs reads them so that such templates deploy unchanged, keeps them in ``labels``
too, and records each as a claim, so a label that disagrees with ``deploy:`` or ``x-ccs`` is an
error naming both. Unknown ``aliyun.*`` labels are kept as plain labels with a warning.

| label | meaning |
|---|---|
| ``aliyun.scale: N`` | replicas |
| ``aliyun.global: true`` | mode global |
| ``aliyun.rolling_updates: true`` | strategy rolling (``false`` asks for nothing) |
| ``aliyun.rolling_updates.parallelism: N`` | update_config.parallelism |
| ``aliyun.depends: a,b`` | depends_on a and b (service_started) |
| ``aliyun.probe.url: http://container:PORT/path`` or ``tcp://container:PORT`` | probe |
| ``aliyun.probe.cmd: CMD`` | probe running a command |
| ``aliyun.probe.timeout_seconds`` / ``initial_delay_seconds`` | probe timings |
| ``aliyun.routing.port_N: domain[:path][;domain2...]`` | routes to container port N |
| ``aliyun.routing.session_sticky: true`` | session_sticky |
| ``aliyun.latest_image: true`` | always_pull |
"""

from __future__ import annotations

import functools
import re
import shlex

from controlplane.compose.claims import Claims
from controlplane.compose.deploy import MAX_REPLICAS
from controlplane.compose.errors import Diagnostics, Path
from controlplane.compose.model import Probe, Route
from controlplane.compose.units import to_bool, to_int

_DOMAIN = re.compile(r"(\*\.)?[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?(\.[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)*")
_PROBE_URL = re.compile(r"(http|tcp)://([^:/\s]+):(\d+)(/\S*)?")
_ROUTE_LABEL = re.compile(r"aliyun\.routing\.port_(\d+)")
_KNOWN = {
    "aliyun.scale",
    "aliyun.global",
    "aliyun.rolling_updates",
    "aliyun.rolling_updates.parallelism",
    "aliyun.depends",
    "aliyun.probe.url",
    "aliyun.probe.cmd",
    "aliyun.probe.timeout_seconds",
    "aliyun.probe.initial_delay_seconds",
    "aliyun.routing.session_sticky",
    "aliyun.latest_image",
}


def port_number(value: object) -> int:
    return to_int(value, minimum=1, maximum=65535)


def make_route(port: int, domain: str, path: str) -> Route:
    """A Route with a checked domain (a bare name is allowed: the router adds the cluster's)."""
    domain = domain.strip().lower()
    if not _DOMAIN.fullmatch(domain) or len(domain) > 253:
        raise ValueError(f"{domain!r} is not a valid domain name")
    path = path.strip() or "/"
    if not path.startswith("/"):
        path = "/" + path
    if re.search(r"\s", path):
        raise ValueError(f"route path {path!r} must not contain spaces")
    return Route(port=port, domain=domain, path=path)


def parse_routes(port: int, value: str) -> list[Route]:
    """``domain[:context_path]``, several separated by ``;``; an http(s):// prefix is allowed."""
    routes = []
    for part in value.split(";"):
        part = re.sub(r"^https?://", "", part.strip())
        if not part:
            continue
        domain, _, path = part.partition(":")
        routes.append(make_route(port, domain, path))
    if not routes:
        raise ValueError("needs at least one domain")
    return routes


def parse_probe_url(url: str) -> Probe:
    match = _PROBE_URL.fullmatch(url.strip())
    if match is None:
        raise ValueError("must be http://container:PORT/path or tcp://container:PORT")
    kind, _, port, path = match.groups()
    if kind == "tcp" and path not in (None, "/"):
        raise ValueError("a tcp probe takes no path")
    port_no = port_number(port)
    if kind == "http":
        return Probe(kind="http", port=port_no, path=path or "/")
    return Probe(kind="tcp", port=port_no)


def _probe(labels: dict[str, str], path: Path, diag: Diagnostics) -> Probe | None:
    url, cmd = labels.get("aliyun.probe.url"), labels.get("aliyun.probe.cmd")
    timings = [k for k in ("timeout_seconds", "initial_delay_seconds") if f"aliyun.probe.{k}" in labels]
    if url is not None and cmd is not None:
        diag.error((*path, "aliyun.probe.cmd"), "use either aliyun.probe.url or aliyun.probe.cmd")
        return None
    if url is None and cmd is None:
        if timings:
            diag.error((*path, f"aliyun.probe.{timings[0]}"), "needs aliyun.probe.url or aliyun.probe.cmd")
        return None
    if url is not None:
        probe = diag.convert((*path, "aliyun.probe.url"), parse_probe_url, url)
    else:
        argv = diag.convert((*path, "aliyun.probe.cmd"), shlex.split, cmd)
        probe = Probe(kind="cmd", cmd=argv) if argv else None
        if argv == []:
            diag.error((*path, "aliyun.probe.cmd"), "must not be empty")
    if probe is None:
        return None
    for key in timings:
        setattr(
            probe, key, diag.convert((*path, f"aliyun.probe.{key}"), to_int, labels[f"aliyun.probe.{key}"])
        )
    return probe


def label_claims(labels: dict[str, str], path: Path, diag: Diagnostics, claims: Claims) -> list[str]:
    """Record the claims made by aliyun.* labels; return the services named by aliyun.depends."""

    def at(key: str) -> Path:
        return (*path, key)

    if "aliyun.scale" in labels:
        count = diag.convert(
            at("aliyun.scale"), lambda v: to_int(v, maximum=MAX_REPLICAS), labels["aliyun.scale"]
        )
        if count is not None:
            claims.add("replicas", at("aliyun.scale"), count)
    if (
        "aliyun.global" in labels
        and (on := diag.convert(at("aliyun.global"), to_bool, labels["aliyun.global"])) is not None
    ):
        claims.add("mode", at("aliyun.global"), "global" if on else "replicated", labels["aliyun.global"])
    if "aliyun.rolling_updates" in labels:
        rolling = diag.convert(at("aliyun.rolling_updates"), to_bool, labels["aliyun.rolling_updates"])
        if rolling:
            claims.add("strategy", at("aliyun.rolling_updates"), "rolling", "true")
    key = "aliyun.rolling_updates.parallelism"
    if key in labels and (count := diag.convert(at(key), to_int, labels[key])) is not None:
        claims.add("parallelism", at(key), count)
    probe = _probe(labels, path, diag)
    if probe is not None:
        source = "aliyun.probe.url" if "aliyun.probe.url" in labels else "aliyun.probe.cmd"
        claims.add("probe", at(source), probe, labels[source])
    routes: list[Route] = []
    first_route: str | None = None
    for name, value in labels.items():
        match = _ROUTE_LABEL.fullmatch(name)
        if match is None:
            continue
        port = diag.convert(at(name), port_number, match.group(1))
        if port is None:
            continue
        parsed = diag.convert(at(name), functools.partial(parse_routes, port), value)
        if parsed:
            routes.extend(parsed)
            first_route = first_route or name
    if first_route is not None:
        claims.add(
            "routes",
            at(first_route),
            sorted(routes, key=lambda r: (r.port, r.domain, r.path)),
            labels[first_route],
        )
    for key, setting in (
        ("aliyun.routing.session_sticky", "session_sticky"),
        ("aliyun.latest_image", "always_pull"),
    ):
        if key in labels and (on := diag.convert(at(key), to_bool, labels[key])) is not None:
            claims.add(setting, at(key), on, labels[key])
    for name in labels:
        if name.startswith("aliyun.") and name not in _KNOWN and not _ROUTE_LABEL.fullmatch(name):
            diag.warn(at(name), "this aliyun label has no meaning on ccs; kept as a plain label")
    depends = labels.get("aliyun.depends", "")
    return [s.strip() for s in depends.split(",") if s.strip()]
