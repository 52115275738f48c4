"""The ``x-ccs`` service extension: ccs settings that Compose has no key for.

```yaml
services:
  web:
    x-ccs:
      strategy: canary            # rolling | blue-green | canary
      routes:
        - {port: 80, domain: www.example.com, path: /}
        - {port: 80, domain: shop.example.com, tls: {secret: shop-cert}}  # HTTPS, NAME or NAME@V
      session_sticky: true
      always_pull: true
      replace_unhealthy: false    # default true: replace a container reported UNHEALTHY
      probe:                      # exactly one of http / tcp / cmd
        http: {port: 80, path: /healthz}
        timeout_seconds: 3
        initial_delay_seconds: 5
      on_node_loss: wait          # wait | reschedule (default: wait with named volumes)
```

``on_node_loss`` says what a node's loss does to the service's containers: ``wait`` keeps each
on its node (and its restarts there), so the node's named volumes keep serving it when the node
returns; ``reschedule`` replaces it elsewhere after the down grace, with empty named volumes there.
Unset, the planner decides from the volumes (controlplane/planner/node_loss.py).

It says the same things as the aliyun.* labels, in structured form, and records the same claims,
so a template that says both must say them consistently. ``routes[].tls.secret`` names the
secret holding the domain's PEM certificate chain and key (``NAME@V`` pins a version); the
deploy resolves the version and checks the certificate (controlplane/api/secret_refs.py).
It is validated with its own JSON schema so that its errors read like Compose's.
"""

from __future__ import annotations

import functools
import shlex
from typing import Any

from jsonschema import Draft7Validator

from ccs.image_refs import host_problem
from ccs.secret_names import split_ref
from controlplane.compose.aliyun import make_route, port_number
from controlplane.compose.claims import Claims
from controlplane.compose.errors import Diagnostics, Path
from controlplane.compose.loader import report_schema_errors
from controlplane.compose.model import Probe, Route, RouteTLS
from controlplane.compose.units import to_bool, to_int

#: ``x-ccs.on_node_loss`` -> the ServiceSpec's enum value.
NODE_LOSS = {"wait": "NODE_LOSS_POLICY_WAIT", "reschedule": "NODE_LOSS_POLICY_RESCHEDULE"}
_PORT = {"type": ["integer", "string"]}
_BOOL = {"type": ["boolean", "string"]}
X_CCS_SCHEMA: dict[str, Any] = {
    "type": "object",
    "additionalProperties": False,
    "properties": {
        "strategy": {"enum": ["rolling", "blue-green", "canary"]},
        "routes": {
            "type": "array",
            "items": {
                "type": "object",
                "additionalProperties": False,
                "required": ["port", "domain"],
                "properties": {
                    "port": _PORT, "domain": {"type": "string"}, "path": {"type": "string"},
                    "tls": {
                        "type": "object",
                        "additionalProperties": False,
                        "required": ["secret"],
                        "properties": {"secret": {"type": "string"}},
                    },
                },
            },
        },
        "session_sticky": _BOOL,
        "always_pull": _BOOL,
        "replace_unhealthy": _BOOL,
        "on_node_loss": {"enum": ["wait", "reschedule"]},
        "probe": {
            "type": "object",
            "additionalProperties": False,
            "properties": {
                "http": {
                    "type": "object",
                    "additionalProperties": False,
                    "required": ["port"],
                    "properties": {"port": _PORT, "path": {"type": "string"}},
                },
                "tcp": {
                    "type": "object",
                    "additionalProperties": False,
                    "required": ["port"],
                    "properties": {"port": _PORT},
                },
                "cmd": {"type": ["string", "array"], "items": {"type": "string"}},
                "timeout_seconds": _PORT,
                "initial_delay_seconds": _PORT,
            },
        },
    },
}


@functools.cache
def _validator() -> Draft7Validator:
    return Draft7Validator(X_CCS_SCHEMA)


def _route(port: int, item: dict[str, Any]) -> Route:
    return make_route(port, str(item["domain"]), str(item.get("path", "/")))


def _probe(value: dict[str, Any], path: Path, diag: Diagnostics) -> Probe | None:
    kinds = [k for k in ("http", "tcp", "cmd") if k in value]
    if len(kinds) != 1:
        diag.error(path, "needs exactly one of http, tcp or cmd")
        return None
    kind = kinds[0]
    probe: Probe | None
    if kind == "cmd":
        cmd = value["cmd"]
        argv = diag.convert((*path, "cmd"), shlex.split, cmd) if isinstance(cmd, str) else list(cmd)
        if not argv:
            diag.error((*path, "cmd"), "must not be empty")
            return None
        probe = Probe(kind="cmd", cmd=argv)
    else:
        port = diag.convert((*path, kind, "port"), port_number, value[kind]["port"])
        if port is None:
            return None
        path_ = str(value[kind].get("path") or "/")
        probe = Probe(kind="http", port=port, path=path_) if kind == "http" else Probe(kind="tcp", port=port)
    for key in ("timeout_seconds", "initial_delay_seconds"):
        if key in value:
            setattr(probe, key, diag.convert((*path, key), to_int, value[key]))
    return probe


def extension_claims(value: Any, path: Path, diag: Diagnostics, claims: Claims) -> None:
    """Validate ``x-ccs`` (found at ``path``) and record its claims."""
    before = len(diag.errors)
    report_schema_errors(_validator(), value, diag, path)
    if len(diag.errors) != before or not isinstance(value, dict):
        return
    if "strategy" in value:
        claims.add("strategy", (*path, "strategy"), value["strategy"])
    if "routes" in value:
        routes: list[Route] = []
        for index, item in enumerate(value["routes"]):
            where = (*path, "routes", index)
            port = diag.convert((*where, "port"), port_number, item["port"])
            if port is None:
                continue
            route = diag.convert(where, functools.partial(_route, port), item)
            if route is not None and "tls" in item:
                ref = diag.convert((*where, "tls", "secret"), split_ref, item["tls"]["secret"])
                if ref is None:
                    continue
                if route.domain.count(".") < 1:
                    diag.error((*where, "domain"), "an HTTPS route needs a full domain name (a certificate names one)")
                    continue
                route.tls = RouteTLS(secret=ref[0], version=ref[1] or 0, pinned=ref[1] is not None)
            if route is not None:
                routes.append(route)
        claims.add(
            "routes", (*path, "routes"), sorted(routes, key=lambda r: (r.port, r.domain, r.path)), "[...]"
        )
    for key in ("session_sticky", "always_pull", "replace_unhealthy"):
        if key in value and (on := diag.convert((*path, key), to_bool, value[key])) is not None:
            claims.add(key, (*path, key), on, value[key])
    if "on_node_loss" in value:
        claims.add("on_node_loss", (*path, "on_node_loss"), NODE_LOSS[value["on_node_loss"]],
                   value["on_node_loss"])
    if "probe" in value:
        probe = _probe(value["probe"], (*path, "probe"), diag)
        if probe is not None:
            claims.add("probe", (*path, "probe"), probe, "{...}")


#: The top-level (application) ``x-ccs``. Only ``registry`` for now.
APP_SCHEMA: dict[str, Any] = {
    "type": "object",
    "additionalProperties": False,
    "properties": {"registry": {"type": "string"}},
}


@functools.cache
def _app_validator() -> Draft7Validator:
    return Draft7Validator(APP_SCHEMA)


def app_extension(value: Any, path: Path, diag: Diagnostics) -> str:
    """The top-level ``x-ccs``; returns its ``registry`` ("" when none): the cluster's registry
    login (``ccs registry login HOST``) the application's images are pulled and resolved with,
    instead of the login named like each image's own host. That the login exists is checked by
    the deploy (controlplane.registry.pinning), which can read the cluster's logins."""
    before = len(diag.errors)
    report_schema_errors(_app_validator(), value, diag, path)
    if len(diag.errors) != before or not isinstance(value, dict) or "registry" not in value:
        return ""
    registry = str(value["registry"])
    if (problem := host_problem(registry)) is not None:
        diag.error((*path, "registry"), problem)
        return ""
    return registry
