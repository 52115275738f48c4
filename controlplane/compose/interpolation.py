"""Variable interpolation exactly as the Compose specification defines it.

Supported forms: ``$VAR``, ``${VAR}``, ``${VAR:-default}``, ``${VAR-default}``, ``${VAR:?error}``,
``${VAR?error}``, ``${VAR:+alt}``, ``${VAR+alt}`` and ``$$`` for a literal ``$``. The text after an
operator is itself interpolated, lazily (only when it is used), which gives nested defaults such
as ``${A:-${B}}``. A ``$`` that starts none of these forms is kept literally, as compose-go does.

This module is pure: values come from a ``lookup`` callable, never from ``os.environ``; the caller
decides the sources (deploy-time ``--env`` first, then the ``.env`` file).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from controlplane.compose.errors import Diagnostics, Path

Lookup = Callable[[str], str | None]

_NAME = re.compile(r"[_a-zA-Z][_a-zA-Z0-9]*")
# Nested defaults deeper than this are refused: each level rescans the rest of the string and
# recurses, so a 1 MiB ``${A:-${A:-...}}`` would otherwise cost quadratic time and then overflow
# the stack. Real templates nest two or three levels.
MAX_NESTING = 20
# Longest operators first so that ":-" is not read as ":" followed by "-".
_OPERATORS = (":-", ":?", ":+", "-", "?", "+")


class InterpolationError(ValueError):
    """A malformed expression, or a ``?``/``:?`` variable that has no value."""


def _closing_brace(text: str, start: int) -> int:
    """Index of the ``}`` that closes a ``${`` whose body starts at ``start``; -1 if none."""
    depth = 0
    i = start
    while i < len(text):
        char = text[i]
        if char == "$" and i + 1 < len(text) and text[i + 1] in "${":
            if text[i + 1] == "{":
                depth += 1
            i += 2
            continue
        if char == "}":
            if depth == 0:
                return i
            depth -= 1
        i += 1
    return -1


def _braced(body: str, lookup: Lookup, missing: list[str], depth: int) -> str:
    match = _NAME.match(body)
    if match is None:
        raise InterpolationError(f"invalid interpolation format: '${{{body}}}'")
    name, rest = match.group(), body[match.end() :]
    value = lookup(name)
    if not rest:
        if value is None:
            missing.append(name)
            return ""
        return value
    for op in _OPERATORS:
        if rest.startswith(op):
            arg = rest[len(op) :]
            break
    else:
        raise InterpolationError(f"invalid interpolation format: '${{{body}}}'")
    is_set = value is not None
    has_value = bool(value)
    if op in (":-", "-"):
        use_value = has_value if op == ":-" else is_set
        return value if use_value and value is not None else _expand(arg, lookup, missing, depth + 1)
    if op in (":?", "?"):
        if (has_value if op == ":?" else is_set) and value is not None:
            return value
        message = _expand(arg, lookup, missing, depth + 1)
        suffix = f": {message}" if message else ""
        raise InterpolationError(f"required variable {name} is missing a value{suffix}")
    # ":+" and "+": the alternative when the variable has a value (or is set), else empty.
    return _expand(arg, lookup, missing, depth + 1) if (has_value if op == ":+" else is_set) else ""


def _expand(text: str, lookup: Lookup, missing: list[str], depth: int = 0) -> str:
    if depth > MAX_NESTING:
        raise InterpolationError(
            f"interpolation nested more than {MAX_NESTING} levels deep; the limit is {MAX_NESTING}"
        )
    out: list[str] = []
    i = 0
    while i < len(text):
        char = text[i]
        if char != "$" or i + 1 >= len(text):
            out.append(char)
            i += 1
            continue
        following = text[i + 1]
        if following == "$":
            out.append("$")
            i += 2
        elif following == "{":
            end = _closing_brace(text, i + 2)
            if end < 0:
                raise InterpolationError(f"invalid interpolation format: unclosed '${{' in {text!r}")
            out.append(_braced(text[i + 2 : end], lookup, missing, depth))
            i = end + 1
        elif (match := _NAME.match(text, i + 1)) is not None:
            value = lookup(match.group())
            if value is None:
                missing.append(match.group())
            out.append(value or "")
            i = match.end()
        else:
            out.append("$")
            i += 1
    return "".join(out)


def interpolate(text: str, lookup: Lookup) -> tuple[str, list[str]]:
    """Expand one string. Returns the result and the names that were unset and had no default.

    Raises InterpolationError for malformed expressions and for unset ``?``/``:?`` variables.
    """
    missing: list[str] = []
    return _expand(text, lookup, missing), missing


def _no_tick() -> None:
    return None


def interpolate_tree(
    node: Any, lookup: Lookup, diag: Diagnostics, path: Path = (), tick: Callable[[], None] = _no_tick
) -> Any:
    """Interpolate every string *value* of a parsed document (mapping keys are left alone).

    Errors and unset-variable warnings are reported against the path of the value. ``tick`` is
    called once per node (the parse budget of ``limits``).
    """
    tick()
    if isinstance(node, dict):
        return {k: interpolate_tree(v, lookup, diag, (*path, k), tick) for k, v in node.items()}
    if isinstance(node, list):
        return [interpolate_tree(v, lookup, diag, (*path, i), tick) for i, v in enumerate(node)]
    if not isinstance(node, str) or "$" not in node:
        return node
    try:
        value, missing = interpolate(node, lookup)
    except InterpolationError as exc:
        diag.error(path, str(exc))
        return node
    for name in dict.fromkeys(missing):
        diag.warn(path, f'variable "{name}" is not set; using an empty string')
    return value
