"""The parsing pipeline: text -> interpolated, validated document -> ServiceSpec messages.

Stages, in order: size limit; YAML (broken YAML stops here); ``.env``; interpolation; the
official schema (a schema-invalid document stops here, since converting it would only add
confusing follow-up errors); the support table; per-service conversion with claims (every
service, so errors show whatever profiles are chosen); the profiles' choice of services; checks
across the services chosen. Every stage reports all it finds into one Diagnostics.

The result lists the privileged values of the chosen services (``ParsedTemplate.privileged``)
for the API to hold against the cluster's policy; the parser does not know the cluster.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from ccs.v1 import resources_pb2
from controlplane.compose.aliyun import label_claims
from controlplane.compose.claims import Claims
from controlplane.compose.deploy import apply_deploy
from controlplane.compose.dotenv import DotenvError, parse_dotenv
from controlplane.compose.errors import Diagnostics, FieldError, Path, TemplateError
from controlplane.compose.extension import app_extension, extension_claims
from controlplane.compose.files import FileSource, grants
from controlplane.compose.files import definitions as file_definitions
from controlplane.compose.graph import check_published_ports, start_order
from controlplane.compose.interpolation import interpolate_tree
from controlplane.compose.limits import ParseBudget
from controlplane.compose.loader import load_yaml, validate_schema
from controlplane.compose.model import (
    Dependency,
    NamedVolume,
    NetworkDef,
    PortSpec,
    ServiceSpec,
    UpdateConfig,
    to_proto,
)
from controlplane.compose.networks import network_def
from controlplane.compose.options import apply_legacy_resources
from controlplane.compose.profiles import Profiles
from controlplane.compose.security import PrivilegedUse, check_host_network
from controlplane.compose.service import Context, convert_service, normalize_path
from controlplane.compose.support import check_support
from controlplane.compose.text import check_text_tree
from controlplane.compose.volumes import attach_definitions, check_shared_names, named_volume

MAX_TEMPLATE_BYTES = 1024 * 1024
LONE_SURROGATE = re.compile("[\ud800-\udfff]")
SERVICE_NAME = re.compile(r"[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?")
BUILD_REFUSAL = (
    "the server runs images, it does not build them: deploy with `ccs app deploy|update|apply --build` "
    "(the CLI builds with the local Docker engine, pushes and deploys the pushed image), or build and push "
    "it yourself and set image:"
)


@dataclass
class ParsedTemplate:
    """What a template asks for, ready to store: one ServiceSpec per service, in start order."""

    services: dict[str, resources_pb2.ServiceSpec] = field(default_factory=dict)
    volumes: list[resources_pb2.NamedVolume] = field(default_factory=list)
    networks: list[resources_pb2.NetworkDef] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    # Values the cluster's policy must allow (controlplane.compose.security), of the
    # services deployed.
    privileged: list[PrivilegedUse] = field(default_factory=list)
    # The template's own secrets and configs (file:, environment:, content:) with their values,
    # for the control plane to store before the services that mount them (controlplane.compose.files).
    file_sources: list[FileSource] = field(default_factory=list)
    # The top-level ``x-ccs.registry``: the registry login the application's images use ("":
    # each image's own host). That a login of that name exists is checked at deploy.
    registry: str = ""


def check_template_size(template: str) -> None:
    """Refuse a template over ``MAX_TEMPLATE_BYTES`` (the one place that says so), or one that
    is not text: a lone surrogate (a caller of the Python API decoding bytes with
    ``surrogateescape``) has no UTF-8 form, and encoding it raised instead of refusing."""
    if (found := LONE_SURROGATE.search(template)) is not None:
        line = template.count("\n", 0, found.start()) + 1
        message = (f"contains a lone surrogate (\\u{ord(found.group()):04x}) at line {line}, which is not a "
                   "character: a template is UTF-8 text")
        raise TemplateError([FieldError("template", message)])
    size = len(template.encode("utf-8"))
    if size > MAX_TEMPLATE_BYTES:
        message = f"is {size} bytes; the limit is 1 MiB ({MAX_TEMPLATE_BYTES} bytes)"
        raise TemplateError([FieldError("template", message)])


def _service_name_problem(name: str) -> str | None:
    if SERVICE_NAME.fullmatch(name):
        return None
    suggestion = re.sub(r"[^a-z0-9-]+", "-", name.lower()).strip("-")[:63].strip("-")
    hint = f"; for example {suggestion!r}" if suggestion and suggestion != name else ""
    return (
        "service names must be DNS labels: lowercase letters, digits and '-', starting and ending "
        f"with a letter or digit, at most 63 characters{hint}"
    )


_RESOURCE_NAME = re.compile(r"[a-zA-Z0-9._-]+")


def _options(kind: str, name: str, options: Any, diag: Diagnostics) -> dict[str, Any] | None:
    """The settings of one top-level volume or network, or None after reporting why not.

    The official schema leaves ``networks:`` open (no ``additionalProperties: false``), so a
    network named ``""`` with the value ``1`` reaches this point; refuse it here.
    """
    if not _RESOURCE_NAME.fullmatch(name):
        diag.error((kind, name), "names may use only letters, digits, '.', '_' and '-'")
        return None
    if options is not None and not isinstance(options, dict):
        diag.error((kind, name), "must be a mapping of settings or empty")
        return None
    return options or {}


def _top_level(doc: dict[str, Any], diag: Diagnostics) -> tuple[list[NamedVolume], list[NetworkDef]]:
    volumes, networks = [], []
    for name, options in (doc.get("volumes") or {}).items():
        if (opts := _options("volumes", name, options, diag)) is not None:
            volumes.append(named_volume(name, opts, diag))
    check_shared_names(volumes, diag)
    for name, options in (doc.get("networks") or {}).items():
        if (opts := _options("networks", name, options, diag)) is None:
            continue
        networks.append(network_def(name, opts, diag))
    return volumes, networks


def _apply_claims(spec: ServiceSpec, claims: Claims, path: Path, diag: Diagnostics) -> None:
    resolved = claims.resolve(diag)
    if resolved.get("mode") == "global":
        spec.mode = "SERVICE_MODE_GLOBAL"
        if "replicas" in resolved:
            where = claims.items["replicas"][0].path
            diag.error(where, "replicas cannot be set when the mode is global")
    else:
        spec.replicas = resolved.get("replicas", 1)
    if "parallelism" in resolved:
        spec.update_config = spec.update_config or UpdateConfig()
        spec.update_config.parallelism = resolved["parallelism"]
    for key in ("strategy", "probe", "routes", "session_sticky", "always_pull", "replace_unhealthy", "on_node_loss"):
        if key in resolved:
            setattr(spec, key, resolved[key])


def _pull_policy(value: Any, path: Path, diag: Diagnostics, claims: Claims) -> None:
    if value == "always":
        claims.add("always_pull", path, True, value)
    elif value not in ("missing", "if_not_present"):
        diag.error(path, f"{value!r} is not supported; use always, missing or if_not_present")


def _service(name: str, svc: dict[str, Any], ctx: Context) -> ServiceSpec:
    diag, path = ctx.diag, ("services", name)
    if (problem := _service_name_problem(name)) is not None:
        diag.error(path, problem)
    spec = convert_service(name, svc, ctx)
    if "build" in svc and not spec.image:
        diag.error((*path, "build"), BUILD_REFUSAL)
    elif "build" in svc:
        diag.warn((*path, "build"), "ignored: ccs deploys image:; `--build` builds and pushes it first")
    elif not spec.image:
        diag.error((*path, "image"), "is required")
    claims = Claims()
    apply_deploy(spec, svc, path, diag, claims)
    apply_legacy_resources(svc, path, spec, diag)
    depends = label_claims(spec.labels, (*path, "labels"), diag, claims)
    if "x-ccs" in svc:
        extension_claims(svc["x-ccs"], (*path, "x-ccs"), diag, claims)
    if "pull_policy" in svc:
        _pull_policy(svc["pull_policy"], (*path, "pull_policy"), diag, claims)
    _apply_claims(spec, claims, path, diag)
    check_host_network(spec, svc, path, diag)
    named = {d.service for d in spec.depends_on}
    spec.depends_on += [Dependency(service=s) for s in depends if s not in named]
    return spec


def _dependencies(specs: dict[str, ServiceSpec], profiles: Profiles, diag: Diagnostics) -> dict[str, list[str]]:
    graph: dict[str, list[str]] = {}
    for name, spec in specs.items():
        kept = []
        for dep in spec.depends_on:
            if dep.service in specs:
                kept.append(dep)
                continue
            why = profiles.why_excluded(dep.service)
            if why is None:
                why = "is not defined"
            if dep.required:
                diag.error(("services", name, "depends_on"), f"service {dep.service!r} {why}")
            else:
                diag.warn(("services", name, "depends_on"), f"optional dependency {dep.service!r} {why}; ignored")
        spec.depends_on = kept
        graph[name] = [d.service for d in kept]
    return graph


def parse_template(
    template: str,
    *,
    env: Mapping[str, str],
    files: Mapping[str, str],
    app_name: str,
    budget: ParseBudget | None = None,
    profiles: Sequence[str] = (),
    stored_values: Collection[str] = (),
) -> ParsedTemplate:
    """Parse a Compose template for application ``app_name``; raise TemplateError listing all errors.

    ``stored_values``: the names of the application's own secrets and configs already stored
    (a re-parse of a stored template, whose secret files and variables are not kept with it;
    see ``files.definitions``).

    ``env`` are deploy-time parameters and win over ``files[".env"]``; ``os.environ`` is never read.
    ``profiles`` are the Compose profiles chosen (see ``profiles.py``; without any,
    ``COMPOSE_PROFILES`` from ``env`` or ``.env`` chooses, as in Compose).
    ``budget`` bounds the CPU time and can cancel the parse from another thread (see ``limits``);
    without one the parse has no CPU limit (the API server always gives one).
    """
    budget = budget or ParseBudget(cpu_clock=None)
    check_template_size(template)
    doc, _, diag = load_yaml(template, budget)
    bundled = {normalize_path(k): v for k, v in files.items()}
    dotenv: dict[str, str] = {}
    if ".env" in bundled:
        try:
            dotenv = parse_dotenv(bundled[".env"], env.get)
        except DotenvError as exc:
            diag.error((".env",), str(exc))

    def lookup(name: str) -> str | None:
        return env[name] if name in env else dotenv.get(name)

    interpolated: set[str] = set()  # variables whose values the template puts into its text

    def tracking(name: str) -> str | None:
        interpolated.add(name)
        return lookup(name)

    doc = interpolate_tree(doc, tracking, diag, tick=budget.tick)
    check_text_tree(doc, diag, budget.tick)
    budget.check_time()
    validate_schema(doc, diag)
    budget.check_time()
    if not isinstance(doc.get("services"), dict) or not doc["services"]:
        diag.error(("services",), "is required and must name at least one service")
    diag.raise_if_errors()
    check_support(doc, diag)
    if doc.get("name") not in (None, app_name):
        diag.warn(("name",), f"the application is deployed as {app_name!r}")
    volumes, networks = _top_level(doc, diag)
    registry = app_extension(doc.get("x-ccs"), ("x-ccs",), diag) if "x-ccs" in doc else ""
    defined = file_definitions(doc, app_name, lookup, bundled, diag, deploy_env=set(env), stored=stored_values)
    definitions = {v.name: v for v in volumes}
    ctx = Context(diag, tracking, bundled, set(definitions), {n.name for n in networks})
    chosen = Profiles.choose(profiles, lookup, doc["services"], diag)
    specs = {}
    for name, svc in doc["services"].items():
        budget.tick()
        if svc is not None and not isinstance(svc, dict):
            # The schema checks only services whose names it accepts (see _unknown_keys).
            if (problem := _service_name_problem(name)) is not None:
                diag.error(("services", name), problem)
            diag.error(("services", name), "must be a mapping of service settings")
            continue
        # Every service is converted, so that a template's errors show whatever profiles
        # are chosen; only the chosen ones are deployed.
        spec = _service(name, svc or {}, ctx)
        attach_definitions(spec, definitions)
        for top in ("secrets", "configs"):
            setattr(spec, top, grants(svc.get(top) if svc else None, top[:-1], defined[top],
                                      ("services", name, top), diag))
        if chosen.includes(name):
            specs[name] = spec
    if not specs and not diag.errors:
        diag.error(("services",), chosen.nothing_chosen())
    order = start_order(_dependencies(specs, chosen, diag), diag)
    published: list[tuple[Path, PortSpec]] = []
    for name, spec in specs.items():
        published += [(("services", name, "ports", i), p) for i, p in enumerate(spec.ports)]
    check_published_ports(published, diag)
    diag.raise_if_errors()
    return ParsedTemplate(
        services={name: to_proto(specs[name], resources_pb2.ServiceSpec()) for name in order},
        volumes=[to_proto(v, resources_pb2.NamedVolume()) for v in volumes],
        networks=[to_proto(n, resources_pb2.NetworkDef()) for n in networks],
        warnings=diag.warnings,
        privileged=[use for name in order for use in ctx.privileged.get(name, [])],
        # A variable the template also interpolates is in its specs anyway: not one to keep out.
        # Every secret's own value is stored (and kept out of the application), mounted or not: a
        # secret of a profile not chosen, or of no service, must not stay in the application in
        # clear; a config's, only when a chosen service mounts it (its file stays with the app).
        file_sources=[replace(src, variable="") if src.variable in interpolated else src
                      for top in defined.values() for src in top.values() if src is not None
                      and (src.value is not None or src.stored)
                      and (src.kind == "secret" or any(ref.name == src.name for spec in specs.values()
                                                       for ref in (*spec.secrets, *spec.configs)))],
        registry=registry,
    )

