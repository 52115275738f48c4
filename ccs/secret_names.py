"""``NAME`` or ``NAME@N``: how a secret or config is named in a request or a template. Pure.

One definition for the server, the Compose parser, the SDK's fake and the CLI.
"""

from __future__ import annotations

import re

KINDS = ("secret", "config")
_NAME = re.compile(r"[a-zA-Z0-9][a-zA-Z0-9_.-]{0,62}")
#: What a secret or config may hold (Swarm's limit is 500 KiB too): it is sent in every
#: assignment of a container that mounts it.
MAX_VALUE_BYTES = 500 * 1024


def name_problem(name: str) -> str | None:
    """None if ``name`` is a valid secret/config name, else why not."""
    if not _NAME.fullmatch(name):
        return (f"{name[:80]!r} is not a valid name: 1 to 63 letters, digits, '_', '.' or '-', "
                "starting with a letter or digit")
    return None


def value_problem(data: bytes) -> str | None:
    """None if ``data`` may be stored as a secret's or config's value, else why not."""
    if not data:
        return "is empty"
    if len(data) > MAX_VALUE_BYTES:
        return f"is {len(data)} bytes; the limit is 500 KiB ({MAX_VALUE_BYTES} bytes)"
    return None


def split_ref(ref: str) -> tuple[str, int | None]:
    """``db`` -> ("db", None); ``db@3`` -> ("db", 3). ValueError saying why for anything else."""
    name, at, version = ref.partition("@")
    problem = name_problem(name)
    if problem:
        raise ValueError(problem)
    if not at:
        return name, None
    if not version.isdigit() or version.startswith("0") or len(version) > 10:
        raise ValueError(f"{ref[:80]!r}: the version after '@' must be a positive number")
    return name, int(version)
