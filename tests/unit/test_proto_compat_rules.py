"""The proto compatibility check (``buf breaking`` with ``protos/buf.yaml``), rule by rule, on
small hand-made schemas: the rules we rely on do what we rely on them for.

Each case is an old and a new ``t.proto`` (text-format ``FileDescriptorProto`` bodies) and the
Buf rule IDs that must be reported: every rule has a case that passes and one that fails."""

from __future__ import annotations

import pytest
from google.protobuf import descriptor_pb2, text_format

from tests.proto_compat import Incompatibility, check, with_json_names


def schema(body: str, name: str = "t.proto", package: str = "t") -> descriptor_pb2.FileDescriptorProto:
    proto = text_format.Parse(body, descriptor_pb2.FileDescriptorProto())
    proto.name, proto.package, proto.syntax = name, package, "proto3"
    (filled,) = with_json_names([proto])  # as protoc writes a descriptor set
    return filled


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
    # FIELD_NO_DELETE_UNLESS_NUMBER_RESERVED / FIELD_NO_DELETE_UNLESS_NAME_RESERVED
    ("field removed, number and name reserved", msg(A, B),
     msg(A, extra="reserved_range { start: 2 end: 3 } reserved_name: 'b_field'"), []),
    ("field removed, only its number reserved", msg(A, B), msg(A, extra="reserved_range { start: 2 end: 3 }"),
     ["FIELD_NO_DELETE_UNLESS_NAME_RESERVED"]),
    ("field removed, only its name reserved", msg(A, B), msg(A, extra="reserved_name: 'b_field'"),
     ["FIELD_NO_DELETE_UNLESS_NUMBER_RESERVED"]),
    ("field removed, nothing reserved", msg(A, B), msg(A),
     ["FIELD_NO_DELETE_UNLESS_NAME_RESERVED", "FIELD_NO_DELETE_UNLESS_NUMBER_RESERVED"]),
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
     ["FIELD_SAME_CARDINALITY", "FIELD_SAME_CARDINALITY", "FIELD_SAME_ONEOF", "FIELD_SAME_ONEOF"]),
    # FIELD_SAME_NAME, FIELD_SAME_JSON_NAME
    ("field renamed", msg(A, B), msg(A, fld("b", 2, "TYPE_INT64")), ["FIELD_SAME_JSON_NAME", "FIELD_SAME_NAME"]),
    ("explicit JSON name equal to the default", msg(B), msg(fld("b_field", 2, "TYPE_INT64", extra="json_name: 'bField'")),
     []),
    ("JSON name changed", msg(B), msg(fld("b_field", 2, "TYPE_INT64", extra="json_name: 'bee'")),
     ["FIELD_SAME_JSON_NAME"]),
    # MESSAGE_NO_DELETE, and nested messages are checked too
    ("message removed", msg(A) + msg(name="N"), msg(A), ["MESSAGE_NO_DELETE"]),
    ("last message removed", msg(A), "", ["MESSAGE_NO_DELETE"]),
    ("nested message removed", msg(extra="nested_type { name: 'In' }"), msg(), ["MESSAGE_NO_DELETE"]),
    ("nested message field retyped", msg(extra="nested_type { name: 'In' " + A + " }"),
     msg(extra="nested_type { name: 'In' " + fld("a", 1, "TYPE_BYTES") + " }"), ["FIELD_SAME_TYPE"]),
    # ENUM_VALUE_SAME_NAME; a renumbered value is a deleted one
    ("enum value added", enum(("E_UNSPECIFIED", 0), ("E_A", 1)), enum(("E_UNSPECIFIED", 0), ("E_A", 1), ("E_B", 2)), []),
    ("enum value renumbered", enum(("E_UNSPECIFIED", 0), ("E_A", 1)), enum(("E_UNSPECIFIED", 0), ("E_A", 2)),
     ["ENUM_VALUE_NO_DELETE_UNLESS_NAME_RESERVED", "ENUM_VALUE_NO_DELETE_UNLESS_NUMBER_RESERVED"]),
    ("enum values swapped", enum(("E_UNSPECIFIED", 0), ("E_A", 1), ("E_B", 2)),
     enum(("E_UNSPECIFIED", 0), ("E_B", 1), ("E_A", 2)), ["ENUM_VALUE_SAME_NAME", "ENUM_VALUE_SAME_NAME"]),
    ("enum alias added", enum(("E_UNSPECIFIED", 0), ("E_A", 1)),
     enum(("E_UNSPECIFIED", 0), ("E_A", 1), ("E_ALIAS", 1), extra="options { allow_alias: true }"), []),
    ("enum value renamed", enum(("E_UNSPECIFIED", 0), ("E_A", 1)), enum(("E_UNSPECIFIED", 0), ("E_Z", 1)),
     ["ENUM_VALUE_SAME_NAME"]),
    # ENUM_VALUE_NO_DELETE_UNLESS_NUMBER_RESERVED / _NAME_RESERVED (enum ranges include their end)
    ("enum value removed, number and name reserved", enum(("E_UNSPECIFIED", 0), ("E_A", 1)),
     enum(("E_UNSPECIFIED", 0), extra="reserved_range { start: 1 end: 1 } reserved_name: 'E_A'"), []),
    ("enum value removed, nothing reserved", enum(("E_UNSPECIFIED", 0), ("E_A", 1)), enum(("E_UNSPECIFIED", 0)),
     ["ENUM_VALUE_NO_DELETE_UNLESS_NAME_RESERVED", "ENUM_VALUE_NO_DELETE_UNLESS_NUMBER_RESERVED"]),
    # ENUM_NO_DELETE, nested ones too
    ("enum removed", msg(A) + enum(("E_UNSPECIFIED", 0)), msg(A), ["ENUM_NO_DELETE"]),
    ("nested enum removed", msg(extra="enum_type { name: 'In' value { name: 'IN_UNSPECIFIED' number: 0 } }"), msg(),
     ["ENUM_NO_DELETE"]),
    # RESERVED_MESSAGE_NO_DELETE / RESERVED_ENUM_NO_DELETE
    ("reservation kept inside a wider range", msg(A, extra="reserved_range { start: 2 end: 4 } reserved_name: 'old'"),
     msg(A, extra="reserved_range { start: 2 end: 10 } reserved_name: 'old' reserved_name: 'older'"), []),
    ("reserved number reused", msg(A, extra="reserved_range { start: 2 end: 3 }"), msg(A, fld("c", 2)),
     ["RESERVED_MESSAGE_NO_DELETE"]),
    ("reserved name dropped", msg(A, extra="reserved_name: 'old'"), msg(A), ["RESERVED_MESSAGE_NO_DELETE"]),
    ("enum reservation dropped", enum(("E_UNSPECIFIED", 0), extra="reserved_range { start: 5 end: 5 }"),
     enum(("E_UNSPECIFIED", 0)), ["RESERVED_ENUM_NO_DELETE"]),
    # RPC_NO_DELETE / RPC_SAME_* / SERVICE_NO_DELETE
    ("method added", REQ_RESP + svc(("Get", ".t.Req", ".t.Resp", False)),
     REQ_RESP + svc(("Get", ".t.Req", ".t.Resp", False), ("Put", ".t.Req", ".t.Resp", False)), []),
    ("method removed", REQ_RESP + svc(("Get", ".t.Req", ".t.Resp", False), ("Put", ".t.Req", ".t.Resp", False)),
     REQ_RESP + svc(("Get", ".t.Req", ".t.Resp", False)), ["RPC_NO_DELETE"]),
    ("method request type changed", REQ_RESP + svc(("Get", ".t.Req", ".t.Resp", False)),
     REQ_RESP + svc(("Get", ".t.Resp", ".t.Resp", False)), ["RPC_SAME_REQUEST_TYPE"]),
    ("method response type changed", REQ_RESP + svc(("Get", ".t.Req", ".t.Resp", False)),
     REQ_RESP + svc(("Get", ".t.Req", ".t.Req", False)), ["RPC_SAME_RESPONSE_TYPE"]),
    ("method made streaming", REQ_RESP + svc(("Get", ".t.Req", ".t.Resp", False)),
     REQ_RESP + svc(("Get", ".t.Req", ".t.Resp", True)), ["RPC_SAME_SERVER_STREAMING"]),
    ("service removed", REQ_RESP + svc(("Get", ".t.Req", ".t.Resp", False)), REQ_RESP, ["SERVICE_NO_DELETE"]),
]


@pytest.mark.parametrize(("old", "new", "rules"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_rule(old: str, new: str, rules: list[str]) -> None:
    found = check([schema(old)], [schema(new)])
    assert sorted(i.rule for i in found) == sorted(rules), [str(i) for i in found]


def test_every_rule_has_a_failing_case() -> None:
    failing = {rule for *_, rules in CASES for rule in rules}
    assert failing == {
        "FIELD_NO_DELETE_UNLESS_NUMBER_RESERVED", "FIELD_NO_DELETE_UNLESS_NAME_RESERVED", "FIELD_SAME_TYPE",
        "FIELD_SAME_CARDINALITY", "FIELD_SAME_ONEOF", "FIELD_SAME_NAME", "FIELD_SAME_JSON_NAME", "MESSAGE_NO_DELETE",
        "ENUM_VALUE_SAME_NAME", "ENUM_VALUE_NO_DELETE_UNLESS_NUMBER_RESERVED",
        "ENUM_VALUE_NO_DELETE_UNLESS_NAME_RESERVED", "ENUM_NO_DELETE", "RESERVED_MESSAGE_NO_DELETE",
        "RESERVED_ENUM_NO_DELETE", "RPC_NO_DELETE", "RPC_SAME_REQUEST_TYPE", "RPC_SAME_RESPONSE_TYPE",
        "RPC_SAME_SERVER_STREAMING", "SERVICE_NO_DELETE"}


def test_a_finding_names_the_field_and_why() -> None:
    found = check([schema(msg(A, B))], [schema(msg(A))])
    assert Incompatibility(
        "FIELD_NO_DELETE_UNLESS_NUMBER_RESERVED", "t.proto",
        'Previously present field "2" with name "b_field" on message "M" was deleted without reserving the number "2".',
    ) in found
    assert str(found[0]).startswith("t.proto: Previously present field")


def test_a_message_may_not_move_to_another_file() -> None:
    """The wire would not mind, but the generated module is the Python import path."""
    old = [schema(msg(A) + msg(name="N"))]
    new = [schema(msg(A)), schema(msg(name="N"), name="t2.proto")]
    assert [i.rule for i in check(old, new)] == ["MESSAGE_NO_DELETE"]


def test_generated_descriptors_get_protocs_json_names() -> None:
    """Generated modules leave default JSON names out, protoc's descriptor sets spell them out;
    with_json_names makes the first like the second, keeping an explicit one."""
    bare = text_format.Parse(
        "name: 't.proto' package: 't' syntax: 'proto3' " + msg(fld("router_stats", 1), fld("x", 2, extra="json_name: 'why'")),
        descriptor_pb2.FileDescriptorProto())
    (filled,) = with_json_names([bare])
    assert [f.json_name for f in filled.message_type[0].field] == ["routerStats", "why"]
    assert not bare.message_type[0].field[0].HasField("json_name")  # the input is left alone
