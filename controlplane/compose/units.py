"""Scalar conversions with Compose's syntax: durations (``ccs.durations``), byte sizes, integers and booleans.

After interpolation a number may arrive as a string (``replicas: ${N}``), which the schema allows,
so every converter here accepts both and raises ValueError with a plain message on bad input;
callers attach the field path.
"""

from __future__ import annotations

import re
from typing import Any

from ccs.durations import parse_ms

_SIZE = re.compile(r"(\d+(?:\.\d+)?)\s*([kmgtp]?)(i?b)?", re.IGNORECASE)
_SIZE_POWER = {"": 0, "k": 1, "m": 2, "g": 3, "t": 4, "p": 5}


def _kind(value: Any) -> str:
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, list):
        return "a list"
    return type(value).__name__


def duration_ms(value: Any) -> int:
    """A duration ("1m30s", "1.5s", "250ms", "1d") in milliseconds.

    The syntax is ``ccs.durations``' (shared with the CLI and the SDK): Go's, as the Compose spec
    writes durations, plus ``d`` as Docker Compose's loader accepts it. It lives in ``ccs/``
    because that is the one package the server, the clients and this pure package may all
    import (see that module's docstring).
    """
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        raise ValueError(f"must be a duration like '1m30s', got {_kind(value)}")
    return parse_ms(str(value))


def size_bytes(value: Any) -> int:
    """A byte size as Compose reads it ("512M", "1.5g", "1024mb", 1048576) — binary multiples."""
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        raise ValueError(f"must be a size like '512M', got {_kind(value)}")
    text = str(value).strip()
    match = _SIZE.fullmatch(text)
    if match is None:
        raise ValueError(f"must be a size like '512M' or '1.5G' (units b, k, m, g, t), got {text!r}")
    return int(float(match.group(1)) * 1024 ** _SIZE_POWER[match.group(2).lower()])


def to_int(value: Any, *, minimum: int = 0, maximum: int | None = None) -> int:
    """An integer from an int or a decimal string, within bounds."""
    if isinstance(value, bool):
        raise ValueError("must be an integer, got a boolean")
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if isinstance(value, str) and re.fullmatch(r"[+-]?\d+", value.strip()):
        value = int(value)
    if not isinstance(value, int):
        raise ValueError(f"must be an integer, got {value!r}")
    if value < minimum:
        raise ValueError(f"must be >= {minimum}")
    if maximum is not None and value > maximum:
        raise ValueError(f"must be <= {maximum}")
    return value


def to_float(value: Any, *, minimum: float = 0.0, maximum: float | None = None) -> float:
    """A number from an int, a float or a decimal string, within bounds."""
    if isinstance(value, bool):
        raise ValueError("must be a number, got a boolean")
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise ValueError(f"must be a number, got {value!r}") from None
    if number < minimum:
        raise ValueError(f"must be >= {minimum:g}")
    if maximum is not None and number > maximum:
        raise ValueError(f"must be <= {maximum:g}")
    return number


def to_bool(value: Any) -> bool:
    """A boolean from a YAML boolean or the strings true/false (any case), as Compose accepts."""
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lower() in ("true", "false"):
        return value.strip().lower() == "true"
    raise ValueError(f"must be true or false, got {value!r}")


def to_str(value: Any) -> str:
    """A scalar as the string Compose would pass to a container (true -> "true", 1.0 -> "1.0")."""
    if isinstance(value, bool):
        return "true" if value else "false"
    return "" if value is None else str(value)
