"""Wire and JSON compatibility of the ccs.v1 protos with the previous release's schema.

An agent one release older must keep working against a newer server, and the reverse: a
message either side serializes must mean the same to the other. So, from one release to the
next, the protos may only grow (new fields, new enum values, new messages, new methods), and
what was there keeps its meaning:

- a field keeps its number, type (and message or enum type name), cardinality (implicit,
  explicit ``optional``, ``repeated``; a map keeps its entry type), oneof and name; the name
  matters because ``ccs ... -o json`` and ``MessageToDict`` use it (its JSON name too);
- a removed field leaves its number *and* its name in ``reserved``, so neither is reused;
- an enum value keeps its number and name; a removed one leaves both reserved;
- a reservation, once made, stays;
- messages, enums, services and methods are not removed; a method keeps its request and
  response types and its streaming on either side.

Why hand-written, over descriptor protos: ``buf breaking`` is the reference tool, but it is
neither on PyPI nor in Debian (the two registries this project uses), and the Python package
that does this (``protokit``, PyPI, alpha) pins ``protobuf<6`` while ccs runs protobuf 7.
These rules are buf's FIELD_SAME_*, FIELD_NO_DELETE_UNLESS_*_RESERVED,
ENUM_VALUE_NO_DELETE_UNLESS_*_RESERVED, RESERVED_*_NO_DELETE and RPC_SAME_* rules, reduced to
what ccs's protos use; they read ``FileDescriptorProto``s, so they work the same on a
snapshot from ``protoc --descriptor_set_out`` and on the generated modules' ``DESCRIPTOR``s.
Files may move and split: everything is keyed by its fully qualified name.
"""

from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from google.protobuf import descriptor_pb2

FDP = descriptor_pb2.FieldDescriptorProto
# Message reserved ranges are [start, end); enum reserved ranges are [start, end].
_Range = descriptor_pb2.DescriptorProto.ReservedRange | descriptor_pb2.EnumDescriptorProto.EnumReservedRange


@dataclass(frozen=True)
class Incompatibility:
    """One break: ``where`` is a fully qualified name (with ``#number`` for a field or value)."""

    rule: str
    where: str
    why: str

    def __str__(self) -> str:
        return f"{self.where}: {self.why} [{self.rule}]"


@dataclass
class _Schema:
    messages: dict[str, descriptor_pb2.DescriptorProto] = field(default_factory=dict)
    enums: dict[str, descriptor_pb2.EnumDescriptorProto] = field(default_factory=dict)
    services: dict[str, descriptor_pb2.ServiceDescriptorProto] = field(default_factory=dict)


def _index(files: Iterable[descriptor_pb2.FileDescriptorProto], packages: frozenset[str] | None) -> _Schema:
    schema = _Schema()

    def add_message(prefix: str, msg: descriptor_pb2.DescriptorProto) -> None:
        name = f"{prefix}.{msg.name}"
        schema.messages[name] = msg
        for nested in msg.nested_type:
            add_message(name, nested)
        for enum in msg.enum_type:
            schema.enums[f"{name}.{enum.name}"] = enum

    for file in files:
        if packages is not None and file.package not in packages:
            continue
        prefix = f".{file.package}" if file.package else ""
        for msg in file.message_type:
            add_message(prefix, msg)
        for enum in file.enum_type:
            schema.enums[f"{prefix}.{enum.name}"] = enum
        for svc in file.service:
            schema.services[f"{prefix}.{svc.name}"] = svc
    return schema


def default_json_name(name: str) -> str:
    """protoc's JSON name for a field without an explicit ``json_name``: drop each underscore
    and capitalize the letter after it (``router_stats`` -> ``routerStats``)."""
    out: list[str] = []
    upper = False
    for ch in name:
        if ch == "_":
            upper = True
        else:
            out.append(ch.upper() if upper else ch)
            upper = False
    return "".join(out)


def _json_name(f: descriptor_pb2.FieldDescriptorProto) -> str:
    # Generated modules drop json_name when it is the default; protoc's descriptor sets keep it.
    return f.json_name if f.HasField("json_name") else default_json_name(f.name)


def _cardinality(f: descriptor_pb2.FieldDescriptorProto) -> str:
    if f.label == FDP.LABEL_REPEATED:
        return "repeated"
    if f.label == FDP.LABEL_REQUIRED:
        return "required"
    if f.proto3_optional:
        return "optional"
    return "singular"


def _type(f: descriptor_pb2.FieldDescriptorProto) -> str:
    kind = FDP.Type.Name(f.type).removeprefix("TYPE_").lower()
    return f"{kind} {f.type_name}" if f.type_name else kind


def _oneof(msg: descriptor_pb2.DescriptorProto, f: descriptor_pb2.FieldDescriptorProto) -> str | None:
    # A proto3 `optional` is a synthetic oneof of its own: that is cardinality, not a oneof.
    if not f.HasField("oneof_index") or f.proto3_optional:
        return None
    return msg.oneof_decl[f.oneof_index].name


def _reserved_number(ranges: Iterable[_Range], number: int, end_inclusive: bool) -> bool:
    return any(r.start <= number < r.end or (end_inclusive and number == r.end) for r in ranges)


def _check_message(name: str, old: descriptor_pb2.DescriptorProto, new: descriptor_pb2.DescriptorProto) -> Iterator[
        Incompatibility]:
    new_fields = {f.number: f for f in new.field}
    for f in old.field:
        where = f"{name}#{f.number}"
        now = new_fields.get(f.number)
        if now is None:
            missing = []
            if not _reserved_number(new.reserved_range, f.number, end_inclusive=False):
                missing.append(f"number {f.number}")
            if f.name not in new.reserved_name:
                missing.append(f"name {f.name!r}")
            if missing:
                yield Incompatibility("FIELD_NO_DELETE_UNLESS_RESERVED", where,
                                      f"field {f.name!r} removed without reserving its {' and '.join(missing)}")
            continue
        if _type(now) != _type(f):
            yield Incompatibility("FIELD_SAME_TYPE", where, f"type changed from {_type(f)} to {_type(now)}")
        if _cardinality(now) != _cardinality(f):
            yield Incompatibility("FIELD_SAME_CARDINALITY", where,
                                  f"cardinality changed from {_cardinality(f)} to {_cardinality(now)}")
        if _oneof(new, now) != _oneof(old, f):
            yield Incompatibility("FIELD_SAME_ONEOF", where,
                                  f"oneof changed from {_oneof(old, f)} to {_oneof(new, now)}")
        if now.name != f.name:
            yield Incompatibility("FIELD_SAME_NAME", where, f"renamed from {f.name!r} to {now.name!r} "
                                  "(JSON output and field-name access change)")
        elif _json_name(now) != _json_name(f):
            yield Incompatibility("FIELD_SAME_JSON_NAME", where,
                                  f"JSON name changed from {_json_name(f)!r} to {_json_name(now)!r}")
    yield from _check_reserved(name, old.reserved_range, old.reserved_name, new.reserved_range,
                               new.reserved_name, end_inclusive=False)


def _check_enum(name: str, old: descriptor_pb2.EnumDescriptorProto, new: descriptor_pb2.EnumDescriptorProto) -> Iterator[
        Incompatibility]:
    new_by_number: dict[int, set[str]] = {}
    new_by_name = {v.name: v.number for v in new.value}
    for v in new.value:
        new_by_number.setdefault(v.number, set()).add(v.name)
    for v in old.value:
        where = f"{name}#{v.number}"
        if v.name in new_by_name and new_by_name[v.name] != v.number:
            yield Incompatibility("ENUM_VALUE_SAME_NUMBER", where,
                                  f"value {v.name!r} renumbered from {v.number} to {new_by_name[v.name]}")
        elif v.number in new_by_number and v.name not in new_by_number[v.number]:
            names = ", ".join(sorted(new_by_number[v.number]))
            yield Incompatibility("ENUM_VALUE_SAME_NAME", where,
                                  f"value renamed from {v.name!r} to {names} (JSON carries enum names)")
        elif v.number not in new_by_number:
            missing = []
            if not _reserved_number(new.reserved_range, v.number, end_inclusive=True):
                missing.append(f"number {v.number}")
            if v.name not in new.reserved_name:
                missing.append(f"name {v.name!r}")
            if missing:
                yield Incompatibility("ENUM_VALUE_NO_DELETE_UNLESS_RESERVED", where,
                                      f"value {v.name!r} removed without reserving its {' and '.join(missing)}")
    yield from _check_reserved(name, old.reserved_range, old.reserved_name, new.reserved_range,
                               new.reserved_name, end_inclusive=True)


def _check_reserved(name: str, old_ranges: Iterable[_Range], old_names: Iterable[str], new_ranges: Iterable[_Range],
                    new_names: Iterable[str], end_inclusive: bool) -> Iterator[Incompatibility]:
    kept_ranges = list(new_ranges)
    for r in old_ranges:
        last = r.end if end_inclusive else r.end - 1
        # Ranges are small in practice; a huge one (`reserved 100 to max`) is probed at its ends.
        probes = range(r.start, last + 1) if last - r.start < 10_000 else (r.start, last)
        lost = [n for n in probes if not _reserved_number(kept_ranges, n, end_inclusive)]
        if lost:
            yield Incompatibility("RESERVED_NUMBER_NO_DELETE", name,
                                  f"reserved number {lost[0]} is no longer reserved")
    kept = set(new_names)
    for n in old_names:
        if n not in kept:
            yield Incompatibility("RESERVED_NAME_NO_DELETE", name, f"reserved name {n!r} is no longer reserved")


def _check_service(name: str, old: descriptor_pb2.ServiceDescriptorProto,
                   new: descriptor_pb2.ServiceDescriptorProto) -> Iterator[Incompatibility]:
    new_methods = {m.name: m for m in new.method}
    for m in old.method:
        where = f"{name}.{m.name}"
        now = new_methods.get(m.name)
        if now is None:
            yield Incompatibility("RPC_NO_DELETE", where, "method removed")
            continue
        for what, before, after in (("request type", m.input_type, now.input_type),
                                    ("response type", m.output_type, now.output_type),
                                    ("client streaming", m.client_streaming, now.client_streaming),
                                    ("server streaming", m.server_streaming, now.server_streaming)):
            if before != after:
                yield Incompatibility("RPC_SAME_SIGNATURE", where, f"{what} changed from {before} to {after}")


def check(old: Iterable[descriptor_pb2.FileDescriptorProto], new: Iterable[descriptor_pb2.FileDescriptorProto],
          packages: Iterable[str] | None = None) -> list[Incompatibility]:
    """Every way ``new`` breaks a peer built from ``old``; empty when it is compatible.

    ``packages`` limits the check to the schema's own packages (imports such as
    ``google.protobuf`` are not ours to keep)."""
    only = frozenset(packages) if packages is not None else None
    before, after = _index(old, only), _index(new, only)
    found: list[Incompatibility] = []
    for name, msg in before.messages.items():
        if name in after.messages:
            found.extend(_check_message(name, msg, after.messages[name]))
        else:
            found.append(Incompatibility("MESSAGE_NO_DELETE", name, "message removed"))
    for name, enum in before.enums.items():
        if name in after.enums:
            found.extend(_check_enum(name, enum, after.enums[name]))
        else:
            found.append(Incompatibility("ENUM_NO_DELETE", name, "enum removed"))
    for name, svc in before.services.items():
        if name in after.services:
            found.extend(_check_service(name, svc, after.services[name]))
        else:
            found.append(Incompatibility("SERVICE_NO_DELETE", name, "service removed"))
    return found


PACKAGE = "ccs.v1"
PREVIOUS_SET = Path(__file__).parent / "data" / "protos-previous" / "ccs-v1.binpb"


def previous_files() -> list[descriptor_pb2.FileDescriptorProto]:
    """The previous release's schema, as ``protos/generate.py --previous REF`` wrote it
    (the ccs.v1 files and what they import)."""
    return list(descriptor_pb2.FileDescriptorSet.FromString(PREVIOUS_SET.read_bytes()).file)


def current_files() -> list[descriptor_pb2.FileDescriptorProto]:
    """The schema this tree ships: the DESCRIPTOR of every generated ``ccs.v1.*_pb2`` module."""
    import ccs.v1

    files = []
    for mod in sorted(pkgutil.iter_modules(ccs.v1.__path__), key=lambda m: m.name):
        if mod.name.endswith("_pb2"):
            proto = descriptor_pb2.FileDescriptorProto()
            importlib.import_module(f"ccs.v1.{mod.name}").DESCRIPTOR.CopyToProto(proto)
            files.append(proto)
    return files
