"""The one duration syntax of ccs: parsed and formatted here for the CLI, the SDK and Compose.

Why one module: four parsers used to disagree (the CLI's ``--timeout`` took ``1m30s`` but not
``500ms``, ``--since`` took ``1d`` but not ``1m30s``, canary steps took one unit only, Compose
took Go durations but not ``1d``). Now every place that reads a duration reads this grammar:

- a sequence of ``NUMBER UNIT`` with no separator, as Go's ``time.ParseDuration`` and the
  Compose spec write it: ``1m30s``, ``1.5h``, ``250ms``, ``.5s``;
- units ``ns``, ``us`` (or ``µs``), ``ms``, ``s``, ``m``, ``h`` (Go's) and ``d`` (24 h, which
  Docker Compose's own loader also accepts); lowercase only, so ``M`` is never read as months;
- a bare ``0`` (as in Go); no sign, no spaces inside, nothing else.

Range rules belong to the caller (a timeout must be more than zero, a Compose
``stop_grace_period`` may be ``0s``); callers that also take a bare number of seconds (the CLI's
``--timeout 45``) say so with ``bare_seconds=True``.

Where it lives: ``ccs/`` is the one package every layer may import. The import-linter
contracts forbid the clients (``ccs``, ``cli``) to import ``controlplane``, and the pure Compose
package to import the server (store, api), grpc or etcd, but not ``ccs``; the control plane
already imports ``ccs.v1`` and ``ccs.config``. This module imports only the standard library's
``re``, so importing it from ``controlplane.compose`` brings in no I/O (``ccs/__init__`` loads
its names lazily and imports no grpc).
"""

from __future__ import annotations

import math
import re

__all__ = ["DurationError", "format_duration", "parse_ms", "parse_seconds"]

#: Seconds per unit.
UNITS: dict[str, float] = {
    "ns": 1e-9, "us": 1e-6, "µs": 1e-6, "μs": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0,
    "d": 86400.0,
}
_PART = re.compile(r"(\d+(?:\.\d*)?|\.\d+)(ns|us|µs|μs|ms|s|m|h|d)")
_NUMBER = re.compile(r"\d+(?:\.\d*)?|\.\d+")
EXAMPLES = "like 1m30s, 500ms, 2h or 1d (units ns, us, ms, s, m, h, d)"


class DurationError(ValueError):
    """Not a duration; the message says what was expected (callers prefix the field or option)."""


def parse_seconds(text: str, *, bare_seconds: bool = False) -> float:
    """``1m30s`` -> ``90.0``; ``bare_seconds`` also takes a plain number (``45``, ``2.5``)."""
    if not isinstance(text, str):
        raise DurationError(f"must be a duration {EXAMPLES}, got {type(text).__name__}")
    value = text.strip()
    if not value:
        raise DurationError(f"must be a duration {EXAMPLES}, got an empty string")
    if value == "0" or (bare_seconds and _NUMBER.fullmatch(value)):
        return float(value)
    total, pos = 0.0, 0
    while pos < len(value):
        match = _PART.match(value, pos)
        if match is None:
            raise DurationError(f"must be a duration {EXAMPLES}, got {text!r}")
        total += float(match.group(1)) * UNITS[match.group(2)]
        pos = match.end()
    if not math.isfinite(total):
        raise DurationError(f"{text!r} is too long a duration")
    return total


def parse_ms(text: str) -> int:
    """``1m30s`` -> ``90000``: whole milliseconds, rounded (what the protos store)."""
    return round(parse_seconds(text) * 1000)


def format_duration(seconds: float) -> str:
    """``90`` -> ``1m30s``, ``0.5`` -> ``0.5s``, ``86400`` -> ``1d``: short, exact to the second
    above a minute, and always something ``parse_seconds`` reads back."""
    if seconds < 60:
        return f"{seconds:g}s"
    total = int(seconds)
    days, rest = divmod(total, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    return "".join(f"{n}{unit}" for n, unit in ((days, "d"), (hours, "h"), (minutes, "m"), (secs, "s")) if n)


def age_text(since: int, now: float) -> str:
    """How long ago Unix second ``since`` was, in its largest unit (``42s``, ``5m``, ``3h``,
    ``2d``); ``-`` when unset (0). The AGE column of the CLI and the web console alike."""
    if not since:
        return "-"
    secs = max(0, int(now - since))
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if secs >= size:
            return f"{secs // size}{unit}"
    return f"{secs}s"
