"""Rendering, one module for every command's ``-o``: tables for people, JSON/YAML (the protobuf
JSON mapping), names and JSONPath for programs.

- ``table`` (default): rich tables on a terminal and plain, two-space-aligned text otherwise
  (like ``docker ps``), so ``ccs app ls | awk ...`` works; ``--no-headers`` drops the header line.
- ``wide``: the table with more columns (each command adds its own; every object also gets its
  LABELS).
- ``name``: ``kind/name``, one a line (like ``kubectl -o name``), for ``xargs``.
- ``json`` / ``yaml``: ``MessageToDict(m, preserving_proto_field_name=True)``: the proto field
  names, enums by name, 64-bit integers as strings, and default values omitted, exactly as the
  API mapping.
- ``jsonpath=EXPR``: EXPR evaluated on that JSON form (a list is ``{"items": [...]}``, as in
  kubectl) with jsonpath-ng; each match on its own line (a string as is, anything else as
  compact JSON). ``{.items[*].meta.name}`` (kubectl's braces) and ``$.items[*].meta.name`` both
  work. A bad expression is a usage error (exit 2) naming the option.
"""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Annotated, Any, TypeVar

import typer
import yaml
from google.protobuf import json_format
from google.protobuf.message import Message
from google.protobuf.timestamp_pb2 import Timestamp
from jsonpath_ng.exceptions import JsonPathLexerError, JsonPathParserError
from jsonpath_ng.ext.parser import parse as jsonpath_parse
from rich import box
from rich.console import Console
from rich.table import Table

from ccs.durations import age_text

M = TypeVar("M", bound=Message)
Row = Sequence[str]


class Format(StrEnum):
    table = "table"
    wide = "wide"
    name = "name"
    json = "json"
    yaml = "yaml"
    jsonpath = "jsonpath"


@dataclass(frozen=True)
class Output:
    """A parsed ``-o``: the format, and the expression of ``jsonpath=EXPR``."""

    format: Format
    expr: str = ""
    _compiled: Any = field(default=None, compare=False, repr=False)

    def __str__(self) -> str:  # how --help shows the default
        return f"jsonpath={self.expr}" if self.format is Format.jsonpath else self.format.value

    @property
    def is_table(self) -> bool:
        """A table for people (``table`` or ``wide``), not data for programs."""
        return self.format in (Format.table, Format.wide)

    @property
    def is_data(self) -> bool:
        """``json`` or ``yaml``: the whole object as data."""
        return self.format in (Format.json, Format.yaml)


TABLE = Output(Format.table)
FORMATS = "table, wide, name, json, yaml or jsonpath=EXPR"


def parse_output(value: str | Output) -> Output:
    """``-o`` -> :class:`Output`; anything else is a usage error naming the option."""
    if isinstance(value, Output):
        return value
    text = value.strip()
    kind, sep, expr = text.partition("=")
    if kind.lower() == "jsonpath":
        if not sep or not expr.strip():
            raise typer.BadParameter("jsonpath needs an expression: jsonpath='{.items[*].meta.name}'",
                                     param_hint="'-o' / '--output'")
        return Output(Format.jsonpath, expr, compile_jsonpath(expr))
    try:
        fmt = Format(text.lower())
    except ValueError:
        raise typer.BadParameter(f"{value!r} is not one of {FORMATS}", param_hint="'-o' / '--output'") from None
    if fmt is Format.jsonpath:
        raise typer.BadParameter("jsonpath needs an expression: jsonpath=EXPR", param_hint="'-o' / '--output'")
    return Output(fmt)


def compile_jsonpath(expr: str) -> Any:
    """Compile kubectl-style ``{.a.b}`` or JSONPath ``$.a.b`` (also ``.a.b`` and ``a.b``)."""
    text = expr.strip()
    if text.startswith("{") and text.endswith("}"):
        text = text[1:-1].strip()
    if text.startswith("."):
        text = "$" + text
    try:
        return jsonpath_parse(text)
    except (JsonPathLexerError, JsonPathParserError, Exception) as exc:
        raise typer.BadParameter(f"jsonpath {expr!r}: {exc}", param_hint="'-o' / '--output'") from None


OutputOpt = Annotated[
    Output,
    typer.Option("-o", "--output", parser=parse_output, metavar="FORMAT", help=f"{FORMATS}."),
]
NoHeadersOpt = Annotated[bool, typer.Option("--no-headers", help="Tables: print no header line.")]


def to_data(value: Message | Sequence[Message] | Mapping[str, Any]) -> Any:
    """The JSON-able form of a message, a list of messages or a dict of them."""
    if isinstance(value, Message):
        return json_format.MessageToDict(value, preserving_proto_field_name=True)
    if isinstance(value, Mapping):
        return {k: to_data(v) for k, v in value.items()}
    return [to_data(v) for v in value]


def dump(data: Any, fmt: Format | Output) -> str:
    fmt = fmt.format if isinstance(fmt, Output) else fmt
    if fmt is Format.json:
        return json.dumps(data, indent=2, sort_keys=False)
    return yaml.safe_dump(data, sort_keys=False, default_flow_style=False).rstrip("\n")


def jsonpath_lines(data: Any, output: Output) -> list[str]:
    """Every match of ``output``'s expression in ``data``: strings as they are, the rest as JSON."""
    compiled = output._compiled if output._compiled is not None else compile_jsonpath(output.expr)
    out = []
    for match in compiled.find(data):
        v = match.value
        out.append(v if isinstance(v, str) else json.dumps(v, separators=(",", ":")))
    return out


_KINDS = {"ClusterNetwork": "network", "GetApplicationResponse": "application"}


def kind_name(m: Message) -> str:
    """``application/web``: the message's kind and its name (``-o name``)."""
    if isinstance(m, Message) and m.DESCRIPTOR.name == "GetApplicationResponse":
        m = m.application  # type: ignore[attr-defined]
    kind = _KINDS.get(m.DESCRIPTOR.name, m.DESCRIPTOR.name.lower())
    fields = m.DESCRIPTOR.fields_by_name
    if "meta" in fields:
        name = m.meta.name  # type: ignore[attr-defined]
    elif "name" in fields:
        name = m.name  # type: ignore[attr-defined]
    else:
        name = ""
    return f"{kind}/{name}"


def render(value: Message | Sequence[Message], output: Output) -> bool:
    """Print ``value`` in a non-table format and return True; False when ``output`` is a table
    (the caller prints its own). A list is ``{"items": [...]}`` for JSONPath, as in kubectl."""
    if output.is_data:
        typer.echo(dump(to_data(value), output))
        return True
    if output.format is Format.name:
        items = [value] if isinstance(value, Message) else list(value)
        for m in items:
            typer.echo(kind_name(m))
        return True
    if output.format is Format.jsonpath:
        data = to_data(value) if isinstance(value, Message) else {"items": to_data(value)}
        for line in jsonpath_lines(data, output):
            typer.echo(line)
        return True
    return False


def render_plain(items: Sequence[Mapping[str, Any]], output: Output, kind: str) -> bool:
    """:func:`render` for plain data (not API messages, e.g. client contexts): each item has a
    ``name``. Returns False for a table (the caller prints it)."""
    if output.is_data:
        typer.echo(dump(list(items), output))
        return True
    if output.format is Format.name:
        for item in items:
            typer.echo(f"{kind}/{item['name']}")
        return True
    if output.format is Format.jsonpath:
        for line in jsonpath_lines({"items": list(items)}, output):
            typer.echo(line)
        return True
    return False


def print_live(m: Message, output: Output, line: Callable[[Any], str]) -> None:
    """One object of a live stream (``-f``) as it arrives: a JSON line, a YAML document, its
    name, its JSONPath matches, or ``line(m)`` (a fixed-width row: later rows' widths are unknown)."""
    if output.format is Format.json:
        typer.echo(json.dumps(to_data(m), separators=(",", ":")))
    elif output.format is Format.yaml:
        typer.echo("---\n" + dump(to_data(m), output))
    elif not render(m, output):
        typer.echo(line(m))


def table(headers: Sequence[str], rows: Iterable[Row], *, no_headers: bool = False) -> None:
    """Print a table: rich on a terminal, plain aligned text otherwise."""
    rows = [list(r) for r in rows]
    console = Console(file=sys.stdout)
    if console.is_terminal:
        t = Table(box=box.SIMPLE_HEAD, show_edge=False, pad_edge=False, show_header=not no_headers)
        for h in headers:
            t.add_column(h, overflow="fold")
        for r in rows:
            t.add_row(*r)
        console.print(t)
        return
    shown = rows if no_headers else [list(headers), *rows]
    widths = [max(len(str(c)) for c in col) for col in zip(headers, *rows, strict=False)]
    for r in shown:
        typer.echo("  ".join(c.ljust(w) for c, w in zip(r, widths, strict=False)).rstrip())


@dataclass(frozen=True)
class Wide:
    """The extra columns of ``-o wide``."""

    headers: Sequence[str]
    row: Callable[[Any], Row]


def emit(
    value: M | Sequence[M],
    output: Output,
    headers: Sequence[str],
    row: Callable[[M], Row],
    *,
    wide: Wide | None = None,
    no_headers: bool = False,
) -> None:
    """Print one message or a list of them as ``output`` says; ``row`` makes a table row, ``wide``
    the extra cells of ``-o wide`` (default: the object's LABELS)."""
    if render(value, output):
        return
    items = [value] if isinstance(value, Message) else list(value)
    if output.format is Format.wide:
        extra = wide or Wide(("LABELS",), lambda m: [labels(object_labels(m))])
        table([*headers, *extra.headers], ([*row(m), *extra.row(m)] for m in items), no_headers=no_headers)
        return
    table(headers, (row(m) for m in items), no_headers=no_headers)


# ---------------------------------------------------------------- label selectors

LabelSelectorOpt = Annotated[
    list[str] | None,
    typer.Option("-l", "--selector", help="Only objects with this label: k=v, k!=v or k (repeatable; all must hold)."),
]


def parse_selector(values: Iterable[str]) -> list[tuple[str, str, str]]:
    """``["k=v", "k!=v", "k"]`` -> ``[(key, op, value)]`` with op ``=``, ``!=`` or ``exists``."""
    out = []
    for item in values:
        if "!=" in item:
            key, _, value = item.partition("!=")
            op = "!="
        elif "=" in item:
            key, _, value = item.partition("=")
            op = "="
        else:
            key, value, op = item, "", "exists"
        if not key.strip():
            raise typer.BadParameter(f"{item!r}: expected k=v, k!=v or k", param_hint="'-l' / '--selector'")
        out.append((key.strip(), op, value))
    return out


def object_labels(m: Message) -> dict[str, str]:
    """An object's labels: its ``meta.labels``, and for a service or container also its Compose
    ``labels`` (``spec.labels``)."""
    out: dict[str, str] = {}
    fields = m.DESCRIPTOR.fields_by_name
    spec = getattr(m, "spec", None) if "spec" in fields else None
    if isinstance(spec, Message) and "labels" in spec.DESCRIPTOR.fields_by_name:
        out.update(spec.labels)  # type: ignore[attr-defined]
    if "meta" in fields:
        out.update(m.meta.labels)  # type: ignore[attr-defined]
    return out


def matches(values: Mapping[str, str], selector: Sequence[tuple[str, str, str]]) -> bool:
    """Whether labels ``values`` satisfy every term of ``selector``."""
    for key, op, want in selector:
        if op == "exists" and key not in values:
            return False
        if op == "=" and values.get(key) != want:
            return False
        if op == "!=" and values.get(key) == want:
            return False
    return True


def select(items: Iterable[M], selector: list[str] | None) -> list[M]:
    """The items whose labels match every ``-l`` term (all of them without one)."""
    terms = parse_selector(selector or [])
    return [m for m in items if matches(object_labels(m), terms)]


# ---------------------------------------------------------------- cells


def age(ts: Timestamp, now: float | None = None) -> str:
    """A short age like ``42s``, ``5m``, ``3h``, ``2d``; ``-`` when unset (ccs.durations)."""
    return age_text(ts.seconds, now if now is not None else time.time())


def labels(values: Mapping[str, str]) -> str:
    return ",".join(f"{k}={v}" for k, v in sorted(values.items())) or "-"


def enum_name(value: int, enum: Any, prefix: str) -> str:
    """``NODE_STATE_READY`` -> ``ready`` for tables."""
    name = str(enum.Name(value)) if value in enum.values() else str(value)
    return name.removeprefix(prefix).lower().replace("_", "-") if name != f"{prefix}UNSPECIFIED" else "-"
