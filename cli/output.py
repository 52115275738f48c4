"""Rendering: tables for people, JSON/YAML (the protobuf JSON mapping) for programs.

Tables are rich tables on a terminal and plain, two-space-aligned text otherwise (like
``docker ps``), so ``ccs app ls | awk ...`` works. JSON and YAML use
``MessageToDict(m, preserving_proto_field_name=True)``: the proto field names, enums by
name, 64-bit integers as strings, and default values omitted, exactly as the API mapping.
"""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from enum import StrEnum
from typing import Annotated, Any, TypeVar

import typer
import yaml
from google.protobuf import json_format
from google.protobuf.message import Message
from google.protobuf.timestamp_pb2 import Timestamp
from rich import box
from rich.console import Console
from rich.table import Table

M = TypeVar("M", bound=Message)
Row = Sequence[str]


class Format(StrEnum):
    table = "table"
    json = "json"
    yaml = "yaml"


OutputOpt = Annotated[
    Format, typer.Option("-o", "--output", help="table, json or yaml.", case_sensitive=False)
]


def to_data(value: Message | Sequence[Message] | Mapping[str, Any]) -> Any:
    """The JSON-able form of a message, a list of messages or a dict of them."""
    if isinstance(value, Message):
        return json_format.MessageToDict(value, preserving_proto_field_name=True)
    if isinstance(value, Mapping):
        return {k: to_data(v) for k, v in value.items()}
    return [to_data(v) for v in value]


def dump(data: Any, fmt: Format) -> str:
    if fmt is Format.json:
        return json.dumps(data, indent=2, sort_keys=False)
    return yaml.safe_dump(data, sort_keys=False, default_flow_style=False).rstrip("\n")


def table(headers: Sequence[str], rows: Iterable[Row]) -> None:
    """Print a table: rich on a terminal, plain aligned text otherwise."""
    rows = [list(r) for r in rows]
    console = Console(file=sys.stdout)
    if console.is_terminal:
        t = Table(box=box.SIMPLE_HEAD, show_edge=False, pad_edge=False)
        for h in headers:
            t.add_column(h, overflow="fold")
        for r in rows:
            t.add_row(*r)
        console.print(t)
        return
    widths = [max(len(str(c)) for c in col) for col in zip(headers, *rows, strict=False)]
    for r in [list(headers), *rows]:
        typer.echo("  ".join(c.ljust(w) for c, w in zip(r, widths, strict=False)).rstrip())


def emit(
    value: M | Sequence[M],
    fmt: Format,
    headers: Sequence[str],
    row: Callable[[M], Row],
) -> None:
    """Print one message or a list of them in ``fmt``; ``row`` makes a table row."""
    if fmt is not Format.table:
        typer.echo(dump(to_data(value), fmt))
        return
    items = [value] if isinstance(value, Message) else list(value)
    table(headers, (row(m) for m in items))


def age(ts: Timestamp, now: float | None = None) -> str:
    """A short age like ``42s``, ``5m``, ``3h``, ``2d``; ``-`` when unset."""
    if not ts.seconds:
        return "-"
    secs = max(0, int((now if now is not None else time.time()) - ts.seconds))
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if secs >= size:
            return f"{secs // size}{unit}"
    return f"{secs}s"


def labels(values: Mapping[str, str]) -> str:
    return ",".join(f"{k}={v}" for k, v in sorted(values.items())) or "-"


def enum_name(value: int, enum: Any, prefix: str) -> str:
    """``NODE_STATE_READY`` -> ``ready`` for tables."""
    name = str(enum.Name(value)) if value in enum.values() else str(value)
    return name.removeprefix(prefix).lower().replace("_", "-") if name != f"{prefix}UNSPECIFIED" else "-"
