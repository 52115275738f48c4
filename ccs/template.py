"""Gather a Compose template and the files that travel with it.

``load_bundle(path)`` returns ``(template_text, files)`` where ``files`` maps a path relative
to the template (as the template writes it, ``./`` stripped) to the file's text: the ``.env``
beside the template if present, every ``env_file`` a service names, and the ``file:`` of every
top-level secret and config (text only: a binary value goes up with ``ccs secret create -f``).
A secret's or config's file that is missing is left out: the server then refuses the template
naming ``secrets.KEY.file`` together with every other error of the template.

The scan is deliberately best-effort: the server is the one authority on what a template
means (and reports errors with field paths). So a template this module cannot parse is
returned as-is with whatever ``.env`` exists, and the server explains what is wrong. The one
thing only the client can check is that a required ``env_file`` exists on this machine;
that error names the field, e.g. ``services.web.env_file[1]``.
"""

from __future__ import annotations

import os
import posixpath
import re
from pathlib import Path
from typing import Any

import yaml

__all__ = ["COMPOSE_FILE_NAMES", "TemplateError", "default_app_name", "find_template", "load_bundle"]

COMPOSE_FILE_NAMES = ("compose.yaml", "compose.yml", "docker-compose.yaml", "docker-compose.yml")


class TemplateError(ValueError):
    """A template or a file it references cannot be read; the message says which and why."""


def find_template(path: str | os.PathLike[str]) -> Path:
    """``path`` itself if it is a file, else the first Compose file name found in that dir."""
    p = Path(path).expanduser()
    if p.is_dir():
        for name in COMPOSE_FILE_NAMES:
            if (p / name).is_file():
                return p / name
        raise TemplateError(f"{p}: no {', '.join(COMPOSE_FILE_NAMES)} in this directory")
    if not p.is_file():
        raise TemplateError(f"{p}: no such file")
    return p


def _read(path: Path, what: str) -> str:
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise TemplateError(f"{what}: cannot read {path}: {exc.strerror}") from exc
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        column = exc.start - (data.rfind(b"\n", 0, exc.start) + 1) + 1
        raise TemplateError(
            f"{what}: {path} is not UTF-8 text (byte 0x{data[exc.start]:02x} at line {line}, column {column})"
        ) from exc


def _env_file_entries(doc: Any) -> list[tuple[str, str, bool]]:
    """``(field_path, path, required)`` for every env_file entry of every service."""
    out: list[tuple[str, str, bool]] = []
    services = doc.get("services") if isinstance(doc, dict) else None
    if not isinstance(services, dict):
        return out
    for svc_name, svc in services.items():
        if not isinstance(svc, dict) or "env_file" not in svc:
            continue
        raw = svc["env_file"]
        field = f"services.{svc_name}.env_file"
        items = raw if isinstance(raw, list) else [raw]
        for i, item in enumerate(items):
            where = f"{field}[{i}]" if isinstance(raw, list) else field
            if isinstance(item, str):
                out.append((where, item, True))
            elif isinstance(item, dict) and isinstance(item.get("path"), str):
                out.append((where, item["path"], item.get("required", True) is not False))
    return out


def _file_sources(doc: Any) -> list[tuple[str, str]]:
    """``(field_path, path)`` for the ``file:`` of every top-level secret and config."""
    out: list[tuple[str, str]] = []
    for top in ("secrets", "configs"):
        defs = doc.get(top) if isinstance(doc, dict) else None
        for key, d in (defs.items() if isinstance(defs, dict) else ()):
            if isinstance(d, dict) and isinstance(d.get("file"), str) and "$" not in d["file"]:
                out.append((f"{top}.{key}.file", d["file"]))
    return out


def _key(ref: str) -> str:
    """The key a referenced file travels under: the reference, normalized (``./a`` -> ``a``)."""
    return posixpath.normpath(ref.replace("\\", "/"))


def load_bundle(path: str | os.PathLike[str]) -> tuple[str, dict[str, str]]:
    """Read the template at ``path`` (a file, or a directory holding a Compose file), the
    ``.env`` beside it and every ``env_file`` it references.

    Raises ``TemplateError`` when the template cannot be read or a required env_file is
    missing. Interpolated paths (``${VAR}``) are skipped: the server resolves them.
    """
    template_path = find_template(path)
    base = template_path.parent
    text = _read(template_path, "template")
    files: dict[str, str] = {}
    dotenv = base / ".env"
    if dotenv.is_file():
        files[".env"] = _read(dotenv, ".env")
    try:
        doc = yaml.safe_load(text)
    except yaml.YAMLError:
        return text, files  # the server reports the syntax error with its position
    except RecursionError:
        # PyYAML composes recursively: a template nested a few hundred levels deep overflows
        # it. The server refuses such a template with its depth limit; let it say so.
        return text, files
    for field, ref, required in _env_file_entries(doc):
        if "$" in ref:
            continue
        target = Path(ref).expanduser()
        if not target.is_absolute():
            target = base / target
        if not target.is_file():
            if required:
                raise TemplateError(f"{field}: file {ref!r} not found (looked at {target})")
            continue
        files[_key(ref)] = _read(target, field)
    for field, ref in _file_sources(doc):
        target = Path(ref).expanduser()
        target = target if target.is_absolute() else base / target
        if target.is_file():
            files[_key(ref)] = _read(target, field)
    return text, files


_NOT_DNS = re.compile(r"[^a-z0-9-]+")


def default_app_name(path: str | os.PathLike[str]) -> str:
    """The application name ``ccs app deploy`` uses without ``--name``: the template's
    directory name, made a DNS label (lowercase, other characters become ``-``)."""
    directory = find_template(path).resolve().parent.name
    name = _NOT_DNS.sub("-", directory.lower()).strip("-")[:63].rstrip("-")
    if not name:
        raise TemplateError(f"cannot derive an application name from {directory!r}: pass --name")
    return name
