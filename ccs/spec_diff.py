"""A ``DiffApplicationResponse`` as a unified diff, service by service (``ccs app diff``).

Pure: no I/O, no clock. Each service's spec is shown in one normalized form - the protobuf JSON
mapping with proto field names (the form of ``-o yaml``), as YAML - with the fields people look
at first (image, replicas, environment, ports, routes, resources) on top and the rest in name
order, so a diff reads the same whatever the template's key order was. The server computed the
specs (a dry run of the update: parameters interpolated, defaults applied), so what is shown is
what the update would store. ``difflib`` (the standard library) makes the hunks.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable
from typing import Any

import yaml
from google.protobuf import json_format

from ccs.v1 import api_pb2, resources_pb2

__all__ = ["FIRST_FIELDS", "has_changes", "normalized", "render", "spec_lines"]

FIRST_FIELDS = ("image", "replicas", "environment", "ports", "routes", "resources")
"""Shown first in every service, in this order; the other fields follow by name."""

_RED, _GREEN, _CYAN, _BOLD, _RESET = "\x1b[31m", "\x1b[32m", "\x1b[36m", "\x1b[1m", "\x1b[0m"


def normalized(spec: resources_pb2.ServiceSpec) -> dict[str, Any]:
    """The spec as data: :data:`FIRST_FIELDS` first, then the others sorted; maps sorted by key.
    ``replicas`` is always present (0 is a value worth seeing, not a default to hide)."""
    data = json_format.MessageToDict(spec, preserving_proto_field_name=True)
    data.setdefault("replicas", spec.replicas)
    out = {k: data.pop(k) for k in FIRST_FIELDS if k in data}
    out.update(sorted(data.items()))
    return out


def spec_lines(spec: resources_pb2.ServiceSpec | None) -> list[str]:
    """The YAML lines of :func:`normalized` (none for an absent spec)."""
    if spec is None:
        return []
    data = normalized(spec)
    text = "".join(
        yaml.safe_dump({k: v}, sort_keys=True, default_flow_style=False, allow_unicode=True) for k, v in data.items()
    )
    return text.splitlines()


def _app_lines(version: str, revision: int) -> list[str]:
    return [f"revision: {revision}", f"version: {version or '-'}"]


def has_changes(resp: api_pb2.DiffApplicationResponse) -> bool:
    """Whether the update would change anything: a service, the version or the revision (a new
    template or parameters that change no service still make a revision)."""
    return (
        any(s.change != "unchanged" for s in resp.services)
        or resp.application.spec.version != resp.version_before
        or resp.application.revision != resp.revision_before
    )


def _hunks(name: str, before: list[str], after: list[str], context: int) -> list[str]:
    return list(difflib.unified_diff(before, after, f"a/{name}", f"b/{name}", n=context, lineterm=""))


def render(resp: api_pb2.DiffApplicationResponse, *, color: bool = False, context: int = 3) -> str:
    """The whole diff: the application's revision and version, then each service that changes
    (``a/`` before, ``b/`` after; an added service has no ``a/`` lines, a removed one no ``b/``).
    Empty when nothing changes. ``color`` adds ANSI colours (for a terminal)."""
    lines: list[str] = []
    app = resp.application
    before_app = _app_lines(resp.version_before, resp.revision_before)
    after_app = _app_lines(app.spec.version, app.revision)
    if before_app != after_app:
        lines += _hunks("application", before_app, after_app, context)
    for s in resp.services:
        if s.change == "unchanged":
            continue
        before = spec_lines(s.before if s.HasField("before") else None)
        after = spec_lines(s.after if s.HasField("after") else None)
        name = f"service/{s.name}"
        hunk = _hunks(name, before, after, context)
        if not hunk:
            continue
        if s.change == "added":
            hunk[0] = "--- /dev/null"
        elif s.change == "removed":
            hunk[1] = "+++ /dev/null"
        lines += hunk
    if resp.release_strategy:
        lines.append(f"# the update would start a {resp.release_strategy} release")
    return "\n".join(_colored(lines) if color else lines)


def _colored(lines: Iterable[str]) -> list[str]:
    out = []
    for line in lines:
        if line.startswith(("---", "+++")):
            out.append(f"{_BOLD}{line}{_RESET}")
        elif line.startswith("@@"):
            out.append(f"{_CYAN}{line}{_RESET}")
        elif line.startswith("-"):
            out.append(f"{_RED}{line}{_RESET}")
        elif line.startswith("+"):
            out.append(f"{_GREEN}{line}{_RESET}")
        else:
            out.append(line)
    return out
