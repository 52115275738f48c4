"""Conversion of one Compose service's container-level keys into a ServiceSpec model.

The document given here is interpolated and schema-valid, so the shapes are known; values still
need Compose's own syntaxes (ports, volumes, durations) and cross-references (named volumes and
networks must be declared at the top level) checked. Every problem is reported, then conversion
continues so that the user sees all of them.
"""

from __future__ import annotations

import posixpath
import re
import shlex
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from controlplane.compose.dotenv import DotenvError, parse_dotenv
from controlplane.compose.errors import Diagnostics, Path
from controlplane.compose.interpolation import Lookup
from controlplane.compose.model import Dependency, HealthCheck, ServiceNetwork, ServiceSpec, VolumeMount
from controlplane.compose.options import convert_options
from controlplane.compose.security import PrivilegedUse, convert_security
from controlplane.compose.syntax import INGRESS_REFUSAL, parse_expose, parse_port, parse_volume
from controlplane.compose.units import duration_ms, to_bool, to_int, to_str

_RESTART = re.compile(r"no|always|unless-stopped|on-failure(:\d+)?")
_ENV_NAME = re.compile(r"[^=\s]+")
_SIGNAL = re.compile(r"(SIG)?[A-Z][A-Z0-9]*([+-]\d+)?|\d{1,2}")


def normalize_path(path: str) -> str:
    """The key under which the CLI bundles a referenced file ("./a/../b.env" -> "b.env")."""
    return posixpath.normpath(path.strip())


@dataclass
class Context:
    """What a service conversion needs to know about the rest of the template."""

    diag: Diagnostics
    lookup: Lookup
    files: Mapping[str, str]
    volumes: set[str] = field(default_factory=set)
    networks: set[str] = field(default_factory=set)
    privileged: dict[str, list[PrivilegedUse]] = field(default_factory=dict)  # per service


def split_command(value: Any) -> list[str]:
    """``command``/``entrypoint``: a string is split like a shell would; a list is kept."""
    if value is None:
        return []
    if isinstance(value, list):
        return [to_str(v) for v in value]
    try:
        return shlex.split(str(value))
    except ValueError as exc:
        raise ValueError(f"cannot be split into arguments: {exc}") from None


def key_values(value: Any, path: Path, diag: Diagnostics, lookup: Lookup | None) -> dict[str, str]:
    """``environment``/``labels`` in list (``K=V``) or map form.

    With ``lookup`` (environment), a bare ``K`` or ``K: null`` takes its value from the
    deploy-time parameters/.env, as Compose takes it from the shell, and is left out if unset.
    """
    pairs: list[tuple[Path, str, str | None]] = []
    if isinstance(value, dict):
        pairs = [((*path, k), k, None if v is None else to_str(v)) for k, v in value.items()]
    elif isinstance(value, list):
        for index, item in enumerate(value):
            name, sep, text = str(item).partition("=")
            pairs.append(((*path, index), name, text if sep else None))
    out: dict[str, str] = {}
    for where, key, val in pairs:
        if not _ENV_NAME.fullmatch(key):
            diag.error(where, f"invalid name {key!r}")
            continue
        if val is None and lookup is not None:
            val = lookup(key)
            if val is None:
                diag.warn(where, f"{key} has no value and is not set; it is left out")
                continue
        out[key] = val or ""
    return out


def _env_files(value: Any, path: Path, ctx: Context) -> dict[str, str]:
    entries = value if isinstance(value, list) else [value]
    merged: dict[str, str] = {}
    for index, entry in enumerate(entries):
        where = (*path, index) if isinstance(value, list) else path
        spec = entry if isinstance(entry, dict) else {"path": entry}
        if spec.get("format") not in (None, ""):
            ctx.diag.error((*where, "format"), "only the default env_file format is supported")
            continue
        required = ctx.diag.convert((*where, "required"), _bool_or_true, spec.get("required"))
        name = normalize_path(str(spec["path"]))
        if name not in ctx.files:
            if required:
                ctx.diag.error(where, f"file {name!r} was not provided with the template")
            continue
        try:
            merged.update(parse_dotenv(ctx.files[name], ctx.lookup))
        except DotenvError as exc:
            ctx.diag.error(where, f"{name}: {exc}")
    return merged


def _bool_or_true(value: Any) -> bool:
    """Compose booleans that default to true when absent (``required``)."""
    return True if value is None else to_bool(value)


def _healthcheck(value: dict[str, Any], path: Path, diag: Diagnostics) -> HealthCheck:
    check = HealthCheck()
    test = value.get("test")
    if isinstance(test, str):
        check.test = ["CMD-SHELL", test]
    elif isinstance(test, list):
        if test and test[0] not in ("CMD", "CMD-SHELL", "NONE"):
            diag.error((*path, "test", 0), "must be CMD, CMD-SHELL or NONE")
        check.test = [str(t) for t in test]
    if check.test[:1] == ["NONE"] or value.get("disable") in (True, "true"):
        check.disable = True
    for key in ("interval", "timeout", "start_period"):
        if key in value:
            setattr(check, f"{key}_ms", diag.convert((*path, key), duration_ms, value[key]))
    if "retries" in value:
        check.retries = diag.convert((*path, "retries"), to_int, value["retries"])
    return check


def _depends_on(value: Any, path: Path, diag: Diagnostics) -> list[Dependency]:
    if isinstance(value, list):
        return [Dependency(service=str(name)) for name in value]
    deps = []
    for name, options in (value or {}).items():
        opts = options or {}
        restart = diag.convert((*path, name, "restart"), _bool_or_true, opts.get("restart", False))
        required = diag.convert((*path, name, "required"), _bool_or_true, opts.get("required"))
        deps.append(
            Dependency(
                service=name,
                condition=opts.get("condition", "service_started"),
                restart=bool(restart),
                required=required is not False,
            )
        )
    return deps


def _networks(value: Any, path: Path, ctx: Context) -> list[ServiceNetwork]:
    names = value if isinstance(value, list) else list((value or {}).keys())
    out = []
    for index, name in enumerate(names):
        where = (*path, index) if isinstance(value, list) else (*path, name)
        if name != "default" and name not in ctx.networks:
            ctx.diag.error(where, f"network {name!r} is not declared under the top-level networks:")
        options = value.get(name) if isinstance(value, dict) else None
        aliases = [str(a) for a in (options or {}).get("aliases", [])]
        out.append(ServiceNetwork(name=name, aliases=aliases))
    return out


def _mounts(svc: dict[str, Any], path: Path, ctx: Context) -> list[VolumeMount]:
    mounts: list[VolumeMount] = []
    for index, item in enumerate(svc.get("volumes") or []):
        where = (*path, "volumes", index)
        parsed = ctx.diag.convert(where, parse_volume, item)
        if parsed is None:
            continue
        mount, ignored = parsed
        if ignored:
            ctx.diag.warn(where, f"ignored volume options: {', '.join(ignored)}")
        if mount.type == "volume" and mount.source and mount.source not in ctx.volumes:
            ctx.diag.error(where, f"volume {mount.source!r} is not declared under the top-level volumes:")
        if mount.type == "bind" and (problem := _bind_source_problem(mount.source)):
            ctx.diag.error(where, problem)
            continue
        mounts.append(mount)
    return mounts


def _bind_source_problem(source: str) -> str | None:
    """Why a bind source cannot be found on a node, or None for an absolute path.

    Compose resolves ``./x`` against the template's directory and ``~`` against the user's
    home on the machine that runs it; on ccs the container runs on a node where neither
    exists, and the engine would fail there, after the template was accepted.
    """
    if posixpath.isabs(source):
        return None
    if source.startswith("~"):
        where = f"{source!r} is in a home directory, which depends on the user of the machine running it"
    else:
        where = f"{source!r} is relative to the template's directory, which does not travel to the nodes"
    return (
        f"bind mount source {where}; use an absolute path on the nodes (and a placement constraint "
        "to the nodes that have it), or a named volume"
    )


def convert_service(name: str, svc: dict[str, Any], ctx: Context) -> ServiceSpec:
    """The container-level part of a ServiceSpec (deploy keys and aliases are applied later)."""
    path: Path = ("services", name)
    diag = ctx.diag
    spec = ServiceSpec(image=str(svc.get("image") or ""))
    for key in ("command", "entrypoint"):
        if key in svc:
            setattr(spec, key, diag.convert((*path, key), split_command, svc[key]) or [])
    environment: dict[str, str] = {}
    if "env_file" in svc:
        environment.update(_env_files(svc["env_file"], (*path, "env_file"), ctx))
    environment.update(key_values(svc.get("environment"), (*path, "environment"), diag, ctx.lookup))
    spec.environment = environment
    spec.labels = key_values(svc.get("labels"), (*path, "labels"), diag, None)
    for index, item in enumerate(svc.get("ports") or []):
        if isinstance(item, dict) and item.get("mode") == "ingress":
            diag.error((*path, "ports", index, "mode"), INGRESS_REFUSAL)
            continue
        ports = diag.convert((*path, "ports", index), parse_port, item)
        for port in ports or []:
            if port.published == 0 and not isinstance(item, dict):
                diag.warn(
                    (*path, "ports", index),
                    f"{item!r} publishes no host port on ccs (Compose would pick a random one); "
                    f"write 'HOST:{port.target}' to publish",
                )
            spec.ports.append(port)
    for index, item in enumerate(svc.get("expose") or []):
        exposed = diag.convert((*path, "expose", index), parse_expose, item)
        if exposed is not None:
            spec.expose.append(exposed)
    spec.volumes = _mounts(svc, path, ctx)
    convert_options(svc, path, spec, diag)
    ctx.privileged[name] = convert_security(svc, path, spec, diag)
    if isinstance(svc.get("healthcheck"), dict):
        spec.healthcheck = _healthcheck(svc["healthcheck"], (*path, "healthcheck"), diag)
    if "restart" in svc:
        restart = str(svc["restart"])
        if not _RESTART.fullmatch(restart):
            diag.error((*path, "restart"), "must be no, always, on-failure[:N] or unless-stopped")
        spec.restart = restart
    if "depends_on" in svc:
        spec.depends_on = _depends_on(svc["depends_on"], (*path, "depends_on"), diag)
    if "networks" in svc:
        spec.networks = _networks(svc["networks"], (*path, "networks"), ctx)
    if "stop_grace_period" in svc:
        where = (*path, "stop_grace_period")
        spec.stop_grace_period_ms = diag.convert(where, duration_ms, svc["stop_grace_period"])
    for key in ("stop_signal", "user", "working_dir", "hostname"):
        if svc.get(key) is not None:
            setattr(spec, key, to_str(svc[key]))
    if spec.stop_signal and not _SIGNAL.fullmatch(spec.stop_signal):
        diag.error((*path, "stop_signal"), f"must be a signal like SIGTERM, TERM or 15, got {spec.stop_signal!r}")
    return spec
