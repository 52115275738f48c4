"""Hostile requests for every RPC of the user API, built from the protobuf descriptors.

Nothing here is written per RPC: the methods come from ``ccs/v1/api_pb2``'s service
descriptors and each request is drawn field by field from its message descriptor, so an RPC
or a field added to the protos is fuzzed without touching this file. A value is either one a
real client sends (the names of the objects the test seeded, so a request gets past the
name checks into the code behind them) or a boundary one for the field's type: empty, huge
(past the 1 MiB limits), NUL bytes, a trailing newline, odd unicode; ints at their type's
ends; NaN and infinities; enum numbers the schema does not define (proto3 enums are open on
the wire); repeated and map fields with many entries; messages nested as deep as the schema
goes. Invalid UTF-8 cannot be put in a Python string: ``with_invalid_utf8`` swaps it into the
serialized bytes of a string field instead, for a raw call.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass

from google.protobuf import descriptor as d
from google.protobuf.message import Message
from google.protobuf.message_factory import GetMessageClass
from hypothesis import strategies as st

from ccs.v1 import api_pb2
from tests.compose_fuzz import compose_documents, on_the_wire

# The objects the test seeds; a request naming them reaches the code past the lookups.
SEED_CLUSTER, SEED_APP, SEED_SERVICE, SEED_NODE, SEED_RELEASE = "fz", "app", "web", "n1", "r000002"
SEED_TEMPLATE = "services:\n  web:\n    image: local/busybox:1\n    command: sleep 3600\n"
HUGE = 1024 * 1024 + 1  # one byte past the template and files limits

HOSTILE_TEXT = st.sampled_from([
    "", " ", "a", "A", "-a", "a-", "a\n", "\na", "a\x00b", "\x00", "a b", "a/b", "../x", "a.b", "a_b",
    "\u202e", "é", "\U0001f600", "\ufeff", "a" * 63, "a" * 64, "a" * 300,
    "${X}", "$", "%s", "'", '"', "\\", "\t", "\r\n",
])
_IDENTITY = ("cluster", "name", "application", "service", "node")  # set on most requests
_NAME_BY_SERVICE = {"ClusterService": SEED_CLUSTER, "NodeService": SEED_NODE, "ApplicationService": SEED_APP,
                    "ServiceService": SEED_SERVICE, "ReleaseService": SEED_RELEASE}
_SEEDED = {
    "cluster": [SEED_CLUSTER], "name": [SEED_CLUSTER, SEED_APP, SEED_SERVICE, SEED_NODE, SEED_RELEASE],
    "application": [SEED_APP], "service": [SEED_SERVICE], "node": [SEED_NODE],
    "strategy": ["rolling", "blue-green", "canary"], "kinds": ["node", "service", "event", "cluster"],
    "allow": ["privileged", "cap_add", "host_network"], "deny": ["privileged", "cap_add"],
    "pod_cidr": ["10.200.0.0/16", "10.0.0.0/8", "172.17.0.0/16", "10.1.2.3/33", "::1/128"],
    "profiles": ["debug", "a b", ""], "version": ["v2", "1.0"],
    "match_header": ["X-Canary"], "match_cookie": ["canary"], "match_value": ["yes"],
}
_INT_ENDS = {
    d.FieldDescriptor.TYPE_INT32: (-(2**31), 2**31 - 1), d.FieldDescriptor.TYPE_SINT32: (-(2**31), 2**31 - 1),
    d.FieldDescriptor.TYPE_SFIXED32: (-(2**31), 2**31 - 1), d.FieldDescriptor.TYPE_INT64: (-(2**63), 2**63 - 1),
    d.FieldDescriptor.TYPE_SINT64: (-(2**63), 2**63 - 1), d.FieldDescriptor.TYPE_SFIXED64: (-(2**63), 2**63 - 1),
    d.FieldDescriptor.TYPE_UINT32: (0, 2**32 - 1), d.FieldDescriptor.TYPE_FIXED32: (0, 2**32 - 1),
    d.FieldDescriptor.TYPE_UINT64: (0, 2**64 - 1), d.FieldDescriptor.TYPE_FIXED64: (0, 2**64 - 1),
}
_FLOATS = st.sampled_from([0.0, -0.0, 1.0, -1.0, 0.5, math.nan, math.inf, -math.inf, 1e308, 5e-324, 1e9]) \
    | st.floats(allow_nan=True, allow_infinity=True)


@dataclass(frozen=True)
class Rpc:
    """One method of the user API, as its descriptor tells it."""

    path: str  # "/ccs.v1.ClusterService/CreateCluster"
    input: d.Descriptor
    server_streaming: bool

    @property
    def name(self) -> str:
        return self.path.rsplit("/", 1)[1]

    def seeds(self) -> dict[str, list[str]]:
        """The seeded values per field name, ``name`` being the object this service serves."""
        service = self.path.split("/")[1].rsplit(".", 1)[1]
        own = _NAME_BY_SERVICE.get(service)
        return {**_SEEDED, "name": [own] if own else _SEEDED["name"]}

    def message_class(self) -> type[Message]:
        return GetMessageClass(self.input)


def api_rpcs() -> list[Rpc]:
    """Every RPC of every service in ``ccs/v1/api.proto``, in declaration order."""
    return [
        Rpc(f"/{service.full_name}/{method.name}", method.input_type, method.server_streaming)
        for service in api_pb2.DESCRIPTOR.services_by_name.values()
        for method in service.methods
    ]


def _text(field: d.FieldDescriptor, seeds: dict[str, list[str]]) -> st.SearchStrategy[str]:
    seeded = seeds.get(field.name)
    if field.name == "template":
        out = st.sampled_from([SEED_TEMPLATE, SEED_TEMPLATE.replace("busybox:1", "busybox:2")]) \
            | compose_documents().map(on_the_wire) | HOSTILE_TEXT
    elif seeded and field.name in _IDENTITY:  # 7 times in 8 the seeded object, to get past the lookups
        hostile = HOSTILE_TEXT | st.text(max_size=20) | st.just("x" * HUGE)
        out = st.sampled_from([False] * 7 + [True]).flatmap(lambda bad: hostile if bad else st.sampled_from(seeded))
        return out
    elif seeded:
        out = st.sampled_from(seeded) | HOSTILE_TEXT | st.text(max_size=20)
    else:
        out = HOSTILE_TEXT | st.text(max_size=40)
    # One huge value per request at most: only a singular field, not each entry of a list or map.
    in_map = field.containing_type is not None and field.containing_type.GetOptions().map_entry
    return out if field.is_repeated or in_map \
        else out | st.just("x" * HUGE)


def _scalar(field: d.FieldDescriptor, seeds: dict[str, list[str]]) -> st.SearchStrategy[object]:
    t = field.type
    if t == d.FieldDescriptor.TYPE_STRING:
        return _text(field, seeds)
    if t == d.FieldDescriptor.TYPE_BYTES:
        return st.binary(max_size=64) | st.just(b"\x00" * HUGE)
    if t == d.FieldDescriptor.TYPE_BOOL:
        return st.booleans()
    if t in (d.FieldDescriptor.TYPE_DOUBLE, d.FieldDescriptor.TYPE_FLOAT):
        return _FLOATS if t == d.FieldDescriptor.TYPE_DOUBLE else _FLOATS.map(_as_float32)
    if t == d.FieldDescriptor.TYPE_ENUM:
        assert field.enum_type is not None
        defined = [v.number for v in field.enum_type.values]
        return st.sampled_from(defined) | st.sampled_from([-1, 99, 2**31 - 1, -(2**31)])
    lo, hi = _INT_ENDS[t]
    return st.sampled_from(sorted({0, 1, 2, 100, 1000, 1001, lo, hi, max(lo, -1)})) | st.integers(lo, hi)


def _as_float32(x: float) -> float:
    return x if math.isnan(x) or math.isinf(x) or abs(x) < 3e38 else math.copysign(math.inf, x)


def _many(element: st.SearchStrategy[object]) -> st.SearchStrategy[list[object]]:
    """A few entries, or very many (the same one 1,000 times, or 200 different ones)."""
    return st.lists(element, max_size=4) | element.map(lambda e: [e] * 1000) \
        | st.lists(element, min_size=200, max_size=200)


def _field_value(field: d.FieldDescriptor, depth: int, seeds: dict[str, list[str]]) -> st.SearchStrategy[object]:
    if field.message_type is not None and field.message_type.GetOptions().map_entry:
        key_field = field.message_type.fields_by_name["key"]
        value_field = field.message_type.fields_by_name["value"]
        keys, values = _scalar(key_field, seeds), _value(value_field, depth + 1, seeds)
        return st.dictionaries(keys, values, max_size=4) | st.dictionaries(
            st.text(alphabet="abcdefghij_", min_size=1, max_size=12), values, min_size=100, max_size=100)
    element = _value(field, depth, seeds)
    return _many(element) if field.is_repeated else element


def _value(field: d.FieldDescriptor, depth: int, seeds: dict[str, list[str]]) -> st.SearchStrategy[object]:
    if field.message_type is not None:
        return messages(field.message_type, depth + 1, seeds)
    return _scalar(field, seeds)


def messages(
    descriptor: d.Descriptor, depth: int = 0, seeds: dict[str, list[str]] | None = None
) -> st.SearchStrategy[Message]:
    """A message of ``descriptor``'s type with each field left unset or drawn (as deep as it nests;
    a message type that contains itself stops at depth 8). ``seeds``: the values a real client
    would send per field name (``Rpc.seeds``); the names of objects are set on most requests."""
    seeds = seeds if seeds is not None else _SEEDED
    cls = GetMessageClass(descriptor)
    if depth > 8:
        return st.just(cls())

    @st.composite
    def build(draw: st.DrawFn) -> Message:
        msg = cls()
        for field in descriptor.fields:
            if not ((field.name in _IDENTITY and depth == 0) or draw(st.booleans())):
                continue
            value = draw(_field_value(field, depth, seeds))
            if field.message_type is not None and field.message_type.GetOptions().map_entry:
                container = getattr(msg, field.name)
                for k, v in value.items():  # type: ignore[attr-defined]
                    if isinstance(v, Message):
                        container[k].CopyFrom(v)
                    else:
                        container[k] = v
            elif field.is_repeated:
                getattr(msg, field.name).extend(value)
            elif field.message_type is not None:
                getattr(msg, field.name).CopyFrom(value)
            else:
                setattr(msg, field.name, value)
        return msg

    return build()


def string_paths(descriptor: d.Descriptor, prefix: str = "", depth: int = 0) -> Iterator[tuple[str, list[str]]]:
    """Every string field reachable in ``descriptor`` as (path users read, attribute steps),
    map keys and values included: ``labels`` (a key), ``labels.k`` (a value), ``canary_steps[0].x``."""
    if depth > 3:
        return
    for field in descriptor.fields:
        path = f"{prefix}{field.name}"
        mt = field.message_type
        if mt is not None and mt.GetOptions().map_entry:
            value = mt.fields_by_name["value"]
            if mt.fields_by_name["key"].type == d.FieldDescriptor.TYPE_STRING:
                yield path, [field.name, "<key>"]
            if value.type == d.FieldDescriptor.TYPE_STRING:
                yield f"{path}.k", [field.name, "<value>"]
        elif mt is not None:
            step = f"{path}[0]" if field.is_repeated else path
            for sub, steps in string_paths(mt, step + ".", depth + 1):
                yield sub, [field.name, *steps]
        elif field.type == d.FieldDescriptor.TYPE_STRING:
            yield (f"{path}[0]" if field.is_repeated else path), [field.name]


PLACEHOLDER = "\u0001\u0002zz"  # 4 bytes no request carries otherwise
INVALID_UTF8 = b"\xff\xfe\xc0\x80"  # same length: the length prefix stays right


def with_invalid_utf8(descriptor: d.Descriptor, steps: list[str]) -> bytes:
    """A serialized request of ``descriptor``'s type whose string at ``steps`` holds invalid UTF-8."""
    msg = GetMessageClass(descriptor)()
    _set_placeholder(msg, steps)
    raw = msg.SerializeToString()
    assert raw.count(PLACEHOLDER.encode()) == 1
    return raw.replace(PLACEHOLDER.encode(), INVALID_UTF8)


def _set_placeholder(msg: Message, steps: list[str]) -> None:
    name, rest = steps[0], steps[1:]
    field = msg.DESCRIPTOR.fields_by_name[name]
    target = getattr(msg, name)
    if rest and rest[0] in ("<key>", "<value>"):
        if rest[0] == "<key>":
            target[PLACEHOLDER] = "v"
        else:
            target["k"] = PLACEHOLDER
    elif field.message_type is not None:
        child = target.add() if field.is_repeated else target
        _set_placeholder(child, rest)
    elif field.is_repeated:
        target.append(PLACEHOLDER)
    else:
        setattr(msg, name, PLACEHOLDER)
