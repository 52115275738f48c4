"""Compose ``secrets:`` and ``configs:``: the top-level definitions and the services' grants. Pure.

A definition is one of:

- ``external: true`` (``name:`` gives the stored name, default the key; ``name: db@3`` pins
  version 3): a secret made beforehand with ``ccs secret create`` (``ccs config create``);
- ``file: PATH`` (a file bundled with the template, as ``env_file`` is), ``environment: VAR``
  (a deploy-time parameter, ``ccs app deploy --env``), or, for configs, ``content:``: the
  application's own secret, stored as ``{app}_{key}`` (Compose names a project's secrets so),
  a new version whenever the value changes, removed with the application.

A grant (``services.S.secrets``, short ``- key`` or long ``{source, target, uid, gid, mode}``)
becomes a :class:`FileRef` with Compose's defaults: a secret at ``/run/secrets/<key>``, a
config at ``/<key>``; uid/gid "0"; mode 0444. The control plane then fills in the version
(the latest for an unpinned name) and its digest; the value never enters the spec.
"""

from __future__ import annotations

import posixpath
import re
from collections.abc import Collection
from dataclasses import dataclass
from typing import Any

from ccs.secret_names import split_ref
from controlplane.compose.errors import Diagnostics, Path
from controlplane.compose.model import FileRef
from controlplane.compose.service import normalize_path

KINDS = ("secrets", "configs")
_ID = re.compile(r"[0-9]{1,10}")
#: The largest user or group id: ids are 32 bits and 4294967295 ((uid_t)-1) means "no change"
#: to chown(2), so the agent could not give a file that owner.
MAX_ID = 4294967294


@dataclass(frozen=True)
class FileSource:
    """A definition: where its value comes from. ``value`` is set for the application's own
    (file/environment/content), None for an external one."""

    kind: str  # "secret" | "config"
    key: str
    name: str  # the stored name
    version: int = 0  # pinned version (external only); 0: the latest
    value: bytes | None = None
    # The application's own: where the value came from, so the control plane can keep it out of
    # the stored application (a bundled file's key, a deploy parameter's name), and whether the
    # value is absent because it is already stored (a re-parse of a stored template).
    path: str = ""
    variable: str = ""
    stored: bool = False


def _stored_name(ref: str, path: Path, diag: Diagnostics) -> tuple[str, int]:
    try:
        name, version = split_ref(ref)
    except ValueError as exc:
        diag.error(path, str(exc))
        return "", 0
    return name, version or 0


def definitions(doc: dict[str, Any], app_name: str, lookup: Any, files: Any, diag: Diagnostics, *,
                deploy_env: Collection[str] = (), stored: Collection[str] = ()
                ) -> dict[str, dict[str, FileSource | None]]:
    """``{"secrets": {key: FileSource}, "configs": {...}}`` for the template's top level; a
    definition already refused (its error reported) is None, so the grants naming it add no
    second error.

    A secret's value must not be kept with the application in clear, so the control plane
    leaves a secret's bundled file and deploy parameter out of what it stores, and re-parses a
    stored template with ``stored``: the names of the application's own values already in the
    store, which stand for a file or variable no longer given (the latest version is used). A
    secret read from the bundled ``.env`` is refused (the ``.env`` is stored whole): pass it
    with ``--env`` (``deploy_env``: the names given that way)."""
    out: dict[str, dict[str, FileSource | None]] = {k: {} for k in KINDS}
    for top in KINDS:
        kind = top[:-1]
        for key, options in (doc.get(top) or {}).items():
            path: Path = (top, key)
            opts = options if isinstance(options, dict) else {}
            source = _source(kind, key, opts, path, app_name, lookup, files, diag, stored)
            if (source is not None and kind == "secret" and source.variable and source.value is not None
                    and source.variable not in deploy_env):
                diag.error((*path, "environment"), f"variable {source.variable!r} comes from the bundled .env, "
                           "which is stored with the application in clear; pass it with `--env`")
                source = None
            out[top][key] = source
    return out


def _source(kind: str, key: str, opts: dict[str, Any], path: Path, app_name: str, lookup: Any,
            files: Any, diag: Diagnostics, stored: Collection[str]) -> FileSource | None:
    external = opts.get("external")
    ext_name = external.get("name") if isinstance(external, dict) else None
    if isinstance(external, str):
        diag.error((*path, "external"), "must be true or false")
        return None
    chosen = [k for k in ("file", "environment", "content") if k in opts]
    if external:
        if chosen:
            diag.error((*path, "external"), f"an external {kind} cannot also set {chosen[0]}:")
            return None
        name, version = _stored_name(str(ext_name or opts.get("name") or key), (*path, "name"), diag)
        return FileSource(kind, key, name, version) if name else None
    if len(chosen) != 1:
        what = "file:, environment: or content:" if kind == "config" else "file: or environment:"
        diag.error(path, f"needs exactly one of {what} (or external: true for one made with "
                         f"`ccs {kind} create`)" + (f"; it sets {', '.join(chosen)}" if chosen else ""))
        return None
    if "name" in opts:
        diag.error((*path, "name"), f"is only for an external {kind}; the application's own is stored as "
                                    f"{app_name}_{key}")
        return None
    how = chosen[0]
    raw = opts[how]
    name, _ = _stored_name(f"{app_name}_{key}", path, diag)
    if not name:
        return None
    value: str | None
    file_path = normalize_path(str(raw)) if how == "file" else ""
    variable = str(raw) if how == "environment" else ""
    if how == "file":
        value = files.get(file_path)
        if value is None and name not in stored:
            diag.error((*path, "file"), f"file {str(raw)!r} was not provided with the template")
            return None
    elif how == "environment":
        value = lookup(variable)
        if value is None and name not in stored:
            diag.error((*path, "environment"), f"variable {variable!r} is not set (pass it with "
                                               "`ccs app deploy --env NAME=VALUE`)")
            return None
    else:
        value = str(raw)
    return FileSource(kind, key, name, 0, None if value is None else value.encode(), path=file_path,
                      variable=variable, stored=value is None)


def grants(value: Any, kind: str, defined: dict[str, FileSource | None], path: Path,
           diag: Diagnostics) -> list[FileRef]:
    """A service's ``secrets:``/``configs:`` list as FileRefs (version: the pinned one, or 0)."""
    out: list[FileRef] = []
    targets: set[str] = set()
    for index, item in enumerate(value or []):
        where: Path = (*path, index)
        spec = item if isinstance(item, dict) else {"source": item}
        key = str(spec.get("source", ""))
        if key not in defined:
            diag.error(where, f"{kind} {key!r} is not defined under the top-level {kind}s:")
            continue
        source = defined[key]
        if source is None:
            continue  # its definition's error says why
        target = str(spec.get("target") or "")
        if not target:
            target = f"/run/secrets/{key}" if kind == "secret" else f"/{key}"
        elif not target.startswith("/"):
            target = f"/run/secrets/{target}" if kind == "secret" else f"/{target}"
        target = posixpath.normpath(target)
        if target in targets:
            diag.error((*where, "target"), f"{target!r} is the target of another {kind} of this service")
            continue
        targets.add(target)
        uid, gid = str(spec.get("uid", "0")), str(spec.get("gid", "0"))
        bad = [f for f, v in (("uid", uid), ("gid", gid)) if not _ID.fullmatch(v)]
        if bad:
            diag.error((*where, bad[0]), "must be a number (a user or group id)")
            continue
        big = [(f, v) for f, v in (("uid", uid), ("gid", gid)) if int(v) > MAX_ID]
        if big:
            diag.error((*where, big[0][0]), f"{big[0][1]} is not a user or group id: ids go from 0 to {MAX_ID}")
            continue
        mode = spec.get("mode", 0o444)
        if isinstance(mode, str):
            try:
                mode = int(mode, 8)
            except ValueError:
                diag.error((*where, "mode"), f"{mode[:20]!r} is not an octal mode")
                continue
        if not isinstance(mode, int) or isinstance(mode, bool) or not 0 <= mode <= 0o777:
            diag.error((*where, "mode"), "must be a permission mode from 0 to 0777")
            continue
        out.append(FileRef(name=source.name, version=source.version, pinned=bool(source.version),
                           target=target, uid=uid, gid=gid, mode=mode, key=key))
    return out
