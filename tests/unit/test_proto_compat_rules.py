"""The proto compatibility checker, rule by rule, on small hand-made schemas.

Each case is an old and a new ``t.proto`` (text-format ``FileDescriptorProto`` bodies) and the
rules the checker must report: every rule has a case that passes and one that fails."""

from __future__ import annotations

import pytest
from google.protobuf import descriptor_pb2, descriptor_pool, text_format

from tests.proto_compat import Incompatibility, check, default_json_name


def schema(body: str, name: str = "t.proto", package: str = "t") -> descriptor_pb2.FileDescriptorProto:
    proto = text_format.Parse(body, descriptor_pb2.FileDescriptorProto())
    proto.name, proto.package, proto.syntax = name, package, "proto3"
    return proto


def msg(*fields: str, extra: str = "", name: str = "M") -> str:
    return f"message_type {{ name: {name!r} {' '.join(fields)} {extra} }}"


def fld(name: str, number: int, kind: str = "TYPE_STRING", label: str = "LABEL_OPTIONAL", extra: str = "") -> str:
    return f"field {{ name: {name!r} number: {number} type: {kind} label: {label} {extra} }}"


def enum(*values: tuple[str, int], extra: str = "", name: str = "E") -> str:
    body = " ".join(f"value {{ name: {n!r} number: {v} }}" for n, v in values)
    return f"enum_type {{ name: {name!r} {body} {extra} }}"


def svc(*methods: tuple[str, str, str, bool]) -> str:
    body = " ".join(f"method {{ name: {n!r} input_type: {i!r} output_type: {o!r} server_streaming: {str(s).lower()} }}"
                    for n, i, o, s in methods)
    return f"service {{ name: 'S' {body} }}"


A = fld("a", 1)
B = fld("b_field", 2, "TYPE_INT64")
REQ_RESP = msg(name="Req") + " " + msg(name="Resp")

# (id, old, new, rules reported)
CASES: list[tuple[str, str, str, list[str]]] = [
    ("unchanged", msg(A, B), msg(A, B), []),
    ("field added", msg(A), msg(A, B), []),
    # FIELD_NO_DELETE_UNLESS_RESERVED
    ("field removed, number and name reserved", msg(A, B),
     msg(A, extra="reserved_range { start: 2 end: 3 } reserved_name: 'b_field'"), []),
    ("field removed, only its number reserved", msg(A, B), msg(A, extra="reserved_range { start: 2 end: 3 }"),
     ["FIELD_NO_DELETE_UNLESS_RESERVED"]),
    ("field removed, only its name reserved", msg(A, B), msg(A, extra="reserved_name: 'b_field'"),
     ["FIELD_NO_DELETE_UNLESS_RESERVED"]),
    ("field removed, nothing reserved", msg(A, B), msg(A), ["FIELD_NO_DELETE_UNLESS_RESERVED"]),
    # FIELD_SAME_TYPE
    ("scalar type changed", msg(A, B), msg(A, fld("b_field", 2, "TYPE_INT32")), ["FIELD_SAME_TYPE"]),
    ("message type changed", msg(fld("m", 1, "TYPE_MESSAGE", extra="type_name: '.t.X'")) + msg(name="X") + msg(name="Y"),
     msg(fld("m", 1, "TYPE_MESSAGE", extra="type_name: '.t.Y'")) + msg(name="X") + msg(name="Y"), ["FIELD_SAME_TYPE"]),
    ("map value type changed",
     msg(fld("labels", 1, "TYPE_MESSAGE", "LABEL_REPEATED", "type_name: '.t.M.LabelsEntry'"),
         extra="nested_type { name: 'LabelsEntry' options { map_entry: true } "
               + fld("key", 1) + fld("value", 2) + " }"),
     msg(fld("labels", 1, "TYPE_MESSAGE", "LABEL_REPEATED", "type_name: '.t.M.LabelsEntry'"),
         extra="nested_type { name: 'LabelsEntry' options { map_entry: true } "
               + fld("key", 1) + fld("value", 2, "TYPE_INT64") + " }"),
     ["FIELD_SAME_TYPE"]),
    # FIELD_SAME_CARDINALITY
    ("repeated stays repeated", msg(fld("r", 1, label="LABEL_REPEATED")), msg(fld("r", 1, label="LABEL_REPEATED")), []),
    ("singular made repeated", msg(A), msg(fld("a", 1, label="LABEL_REPEATED")), ["FIELD_SAME_CARDINALITY"]),
    ("implicit presence made optional", msg(A),
     msg(fld("a", 1, extra="oneof_index: 0 proto3_optional: true"), extra="oneof_decl { name: '_a' }"),
     ["FIELD_SAME_CARDINALITY"]),
    # FIELD_SAME_ONEOF
    ("oneof gains a member",
     msg(fld("a", 1, extra="oneof_index: 0"), extra="oneof_decl { name: 'choice' }"),
     msg(fld("a", 1, extra="oneof_index: 0"), fld("b", 2, extra="oneof_index: 0"), extra="oneof_decl { name: 'choice' }"),
     []),
    ("field moved into a oneof", msg(A, fld("b", 2)),
     msg(fld("a", 1, extra="oneof_index: 0"), fld("b", 2, extra="oneof_index: 0"), extra="oneof_decl { name: 'choice' }"),
     ["FIELD_SAME_ONEOF", "FIELD_SAME_ONEOF"]),
    # FIELD_SAME_NAME
    ("field renamed", msg(A, B), msg(A, fld("b", 2, "TYPE_INT64")), ["FIELD_SAME_NAME"]),
    # FIELD_SAME_JSON_NAME: protoc's sets spell out the default JSON name, generated modules leave it out
    ("default JSON name spelled out or left out", msg(fld("b_field", 2, "TYPE_INT64", extra="json_name: 'bField'")),
     msg(B), []),
    ("JSON name changed", msg(B), msg(fld("b_field", 2, "TYPE_INT64", extra="json_name: 'bee'")),
     ["FIELD_SAME_JSON_NAME"]),
    # MESSAGE_NO_DELETE, and nested messages are checked too
    ("message removed", msg(A) + msg(name="N"), msg(A), ["MESSAGE_NO_DELETE"]),
    ("nested message field retyped", msg(extra="nested_type { name: 'In' " + A + " }"),
     msg(extra="nested_type { name: 'In' " + fld("a", 1, "TYPE_BYTES") + " }"), ["FIELD_SAME_TYPE"]),
    # ENUM_VALUE_SAME_NUMBER / ENUM_VALUE_SAME_NAME
    ("enum value added", enum(("E_UNSPECIFIED", 0), ("E_A", 1)), enum(("E_UNSPECIFIED", 0), ("E_A", 1), ("E_B", 2)), []),
    ("enum value renumbered", enum(("E_UNSPECIFIED", 0), ("E_A", 1)), enum(("E_UNSPECIFIED", 0), ("E_A", 2)),
     ["ENUM_VALUE_SAME_NUMBER"]),
    ("enum values swapped", enum(("E_UNSPECIFIED", 0), ("E_A", 1), ("E_B", 2)),
     enum(("E_UNSPECIFIED", 0), ("E_B", 1), ("E_A", 2)), ["ENUM_VALUE_SAME_NUMBER", "ENUM_VALUE_SAME_NUMBER"]),
    ("enum alias added", enum(("E_UNSPECIFIED", 0), ("E_A", 1)),
     enum(("E_UNSPECIFIED", 0), ("E_A", 1), ("E_ALIAS", 1), extra="options { allow_alias: true }"), []),
    ("enum value renamed", enum(("E_UNSPECIFIED", 0), ("E_A", 1)), enum(("E_UNSPECIFIED", 0), ("E_Z", 1)),
     ["ENUM_VALUE_SAME_NAME"]),
    # ENUM_VALUE_NO_DELETE_UNLESS_RESERVED (enum ranges include their end)
    ("enum value removed, number and name reserved", enum(("E_UNSPECIFIED", 0), ("E_A", 1)),
     enum(("E_UNSPECIFIED", 0), extra="reserved_range { start: 1 end: 1 } reserved_name: 'E_A'"), []),
    ("enum value removed, nothing reserved", enum(("E_UNSPECIFIED", 0), ("E_A", 1)), enum(("E_UNSPECIFIED", 0)),
     ["ENUM_VALUE_NO_DELETE_UNLESS_RESERVED"]),
    ("enum removed", enum(("E_UNSPECIFIED", 0)), "", ["ENUM_NO_DELETE"]),
    # RESERVED_NUMBER_NO_DELETE / RESERVED_NAME_NO_DELETE
    ("reservation kept inside a wider range", msg(A, extra="reserved_range { start: 2 end: 4 } reserved_name: 'old'"),
     msg(A, extra="reserved_range { start: 2 end: 10 } reserved_name: 'old' reserved_name: 'older'"), []),
    ("reserved number reused", msg(A, extra="reserved_range { start: 2 end: 3 }"), msg(A, fld("c", 2)),
     ["RESERVED_NUMBER_NO_DELETE"]),
    ("reserved name dropped", msg(A, extra="reserved_name: 'old'"), msg(A), ["RESERVED_NAME_NO_DELETE"]),
    ("enum reservation dropped", enum(("E_UNSPECIFIED", 0), extra="reserved_range { start: 5 end: 5 }"),
     enum(("E_UNSPECIFIED", 0)), ["RESERVED_NUMBER_NO_DELETE"]),
    # RPC_NO_DELETE / RPC_SAME_SIGNATURE / SERVICE_NO_DELETE
    ("method added", REQ_RESP + svc(("Get", ".t.Req", ".t.Resp", False)),
     REQ_RESP + svc(("Get", ".t.Req", ".t.Resp", False), ("Put", ".t.Req", ".t.Resp", False)), []),
    ("method removed", REQ_RESP + svc(("Get", ".t.Req", ".t.Resp", False), ("Put", ".t.Req", ".t.Resp", False)),
     REQ_RESP + svc(("Get", ".t.Req", ".t.Resp", False)), ["RPC_NO_DELETE"]),
    ("method request type changed", REQ_RESP + svc(("Get", ".t.Req", ".t.Resp", False)),
     REQ_RESP + svc(("Get", ".t.Resp", ".t.Resp", False)), ["RPC_SAME_SIGNATURE"]),
    ("method made streaming", REQ_RESP + svc(("Get", ".t.Req", ".t.Resp", False)),
     REQ_RESP + svc(("Get", ".t.Req", ".t.Resp", True)), ["RPC_SAME_SIGNATURE"]),
    ("service removed", REQ_RESP + svc(("Get", ".t.Req", ".t.Resp", False)), REQ_RESP, ["SERVICE_NO_DELETE"]),
]


@pytest.mark.parametrize(("old", "new", "rules"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_rule(old: str, new: str, rules: list[str]) -> None:
    found = check([schema(old)], [schema(new)])
    assert sorted(i.rule for i in found) == sorted(rules), [str(i) for i in found]


def test_every_rule_has_a_failing_case() -> None:
    failing = {rule for *_, rules in CASES for rule in rules}
    assert failing == {
        "FIELD_NO_DELETE_UNLESS_RESERVED", "FIELD_SAME_TYPE", "FIELD_SAME_CARDINALITY", "FIELD_SAME_ONEOF",
        "FIELD_SAME_NAME", "FIELD_SAME_JSON_NAME", "MESSAGE_NO_DELETE", "ENUM_VALUE_SAME_NUMBER",
        "ENUM_VALUE_SAME_NAME", "ENUM_VALUE_NO_DELETE_UNLESS_RESERVED", "ENUM_NO_DELETE",
        "RESERVED_NUMBER_NO_DELETE", "RESERVED_NAME_NO_DELETE", "RPC_NO_DELETE", "RPC_SAME_SIGNATURE",
        "SERVICE_NO_DELETE"}


def test_a_finding_names_the_field_and_why() -> None:
    (found,) = check([schema(msg(A, B))], [schema(msg(A))])
    assert found == Incompatibility(
        "FIELD_NO_DELETE_UNLESS_RESERVED", ".t.M#2",
        "field 'b_field' removed without reserving its number 2 and name 'b_field'")
    assert str(found).startswith(".t.M#2: field 'b_field' removed")


def test_files_may_move_and_imports_are_not_ours() -> None:
    """Keyed by full name, so a message may move to another file of the package; a package
    left out of ``packages`` (an import such as google.protobuf) is not checked."""
    old = [schema(msg(A) + msg(name="N")), schema(msg(name="W"), name="w.proto", package="dep")]
    new = [schema(msg(A)), schema(msg(name="N"), name="t2.proto")]
    assert check(old, new, packages=["t"]) == []
    assert [i.rule for i in check(old, new)] == ["MESSAGE_NO_DELETE"]


@pytest.mark.parametrize(("name", "json"), [("a", "a"), ("router_stats", "routerStats"),
                                            ("heartbeat_period_ms", "heartbeatPeriodMs"), ("x__y", "xY")])
def test_default_json_name_matches_protobuf(name: str, json: str) -> None:
    assert default_json_name(name) == json
    proto = schema(msg(fld(name, 1)))
    pool = descriptor_pool.DescriptorPool()
    pool.Add(proto)
    assert pool.FindMessageTypeByName("t.M").fields[0].json_name == json
