"""Compose documents generated from the official schema (``controlplane/compose/schema``).

The corpus templates of ``tests.compose_fuzz`` use the keys real applications use; documents
drawn from the schema reach every key the specification defines, with every type it allows
for it (``oneOf`` branches, enums, ``x-`` extensions, pattern-named maps), so the parser's
conversion code behind schema validation sees values no corpus file has.

Why not ``hypothesis-jsonschema``: its last release (0.23.1, 2024) fails on the current
hypothesis (``AttributeError: 'many' object has no attribute 'more'``). The Compose schema uses
only a small part of JSON Schema (``$ref``, ``type``, ``properties``, ``patternProperties``,
``additionalProperties``, ``required``, ``items``, ``oneOf``, ``enum``, ``minimum``/``maximum``,
``pattern``), which this module covers; a keyword it does not know makes ``from_schema`` raise,
so a schema update that needs more is noticed.
"""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path
from typing import Any

from hypothesis import strategies as st

SCHEMA_PATH = Path(__file__).resolve().parent.parent / "controlplane" / "compose" / "schema" / "compose-spec.json"
_KNOWN = {"$schema", "$id", "title", "description", "deprecated", "default", "$ref", "type", "properties",
          "patternProperties", "additionalProperties", "required", "items", "oneOf", "enum", "minimum",
          "maximum", "pattern", "uniqueItems", "definitions"}
MAX_DEPTH = 7
MAX_PROPERTIES = 6  # of one object, besides the required ones: documents stay small


@cache
def schema() -> dict[str, Any]:
    return dict(json.loads(SCHEMA_PATH.read_text()))


def _resolve(node: dict[str, Any]) -> dict[str, Any]:
    while "$ref" in node:
        ref = node["$ref"]
        if not ref.startswith("#/definitions/"):
            raise ValueError(f"unsupported $ref {ref!r}")
        node = schema()["definitions"][ref.removeprefix("#/definitions/")]
    return node


_SCALARS: dict[str, st.SearchStrategy[Any]] = {
    "string": st.sampled_from(["", "a", "web", "80:80", "1s", "1.5", "${X}", "${X:-d}", "$$", "a b", "/tmp",
                               "none", "host", "always", "tcp", "é", "\x00", "\x7f"]) | st.text(max_size=12),
    "number": st.sampled_from([0, 1, -1, 0.5, 1e9, 2**63]) | st.floats(allow_nan=False, allow_infinity=False),
    "integer": st.sampled_from([0, 1, -1, 65535, 65536, 2**31, 2**63]) | st.integers(),
    "boolean": st.booleans(),
    "null": st.none(),
}


def _keys(pattern: str) -> st.SearchStrategy[str]:
    """Names for a pattern-named map: mostly names ccs accepts (DNS labels; ``x-ccs`` only where it
    means something), sometimes anything the pattern allows."""
    if pattern == "^x-":
        return st.sampled_from(["x-a", "x-"]) | st.from_regex(r"\Ax-[a-z]{1,5}\Z")
    plain = st.sampled_from(["web", "db", "api-1"]) | st.from_regex(r"\A[a-z][a-z0-9-]{0,8}\Z")
    return st.one_of(plain, plain, st.from_regex(pattern, fullmatch=True).filter(lambda k: len(k) <= 20))


def _object(node: dict[str, Any], depth: int) -> st.SearchStrategy[dict[str, Any]]:
    properties: dict[str, Any] = node.get("properties", {})
    required: list[str] = node.get("required", [])
    patterns: dict[str, Any] = node.get("patternProperties", {})
    optional = sorted(set(properties) - set(required))

    @st.composite
    def build(draw: st.DrawFn) -> dict[str, Any]:
        out: dict[str, Any] = {}
        chosen = draw(st.lists(st.sampled_from(optional), max_size=MAX_PROPERTIES, unique=True)) if optional else []
        for key in [*required, *chosen]:
            out[key] = draw(from_schema(properties.get(key, {}), depth + 1))
        for pattern, sub in patterns.items():
            for key in draw(st.lists(_keys(pattern), max_size=2, unique=True)):
                out.setdefault(key, draw(from_schema(sub, depth + 1)))
        extra = node.get("additionalProperties", True)
        if isinstance(extra, dict) and draw(st.booleans()):
            out.setdefault(draw(st.sampled_from(["k", "a.b", "LABEL"])), draw(from_schema(extra, depth + 1)))
        return out

    return build()


def from_schema(node: dict[str, Any], depth: int = 0) -> st.SearchStrategy[Any]:
    """Values ``node`` (a part of the Compose schema) accepts, as deep as ``MAX_DEPTH``."""
    node = _resolve(node)
    unknown = set(node) - _KNOWN
    if unknown:
        raise ValueError(f"schema keywords not covered: {sorted(unknown)}")
    if "enum" in node:
        return st.sampled_from(node["enum"])
    if "oneOf" in node:
        return st.one_of([from_schema(branch, depth) for branch in node["oneOf"]])
    types = node.get("type", ["string", "number", "boolean", "null", "object", "array"])
    types = [types] if isinstance(types, str) else list(types)
    if depth >= MAX_DEPTH:  # deep enough: scalars only (an empty collection where one is required)
        scalars = [t for t in types if t in _SCALARS]
        return st.one_of([_SCALARS[t] for t in scalars]) if scalars else st.just({} if "object" in types else [])
    options: list[st.SearchStrategy[Any]] = []
    for t in types:
        if t == "object":
            options.append(_object(node, depth))
        elif t == "array":
            options.append(st.lists(from_schema(node.get("items", {}), depth + 1), max_size=3))
        elif t == "integer" and ("minimum" in node or "maximum" in node):
            options.append(st.integers(node.get("minimum"), node.get("maximum")))
        elif t == "string" and "pattern" in node:
            options.append(st.from_regex(node["pattern"], fullmatch=True) | _SCALARS["string"])
        else:
            options.append(_SCALARS[t])
    return st.one_of(options)


_NAMED = {("services",), ("volumes",), ("networks",), ("services", "*", "networks")}


def without_refused_keys(node: Any, scope: tuple[str, ...] = ()) -> Any:
    """``node`` without the keys ccs's support table refuses (``compose.support.RULES``), so a
    document can get past them to the conversion of everything else, and be accepted."""
    from controlplane.compose.support import RULES, Action

    if isinstance(node, list):
        return [without_refused_keys(v, (*scope, "[]")) for v in node]
    if not isinstance(node, dict):
        return node
    out = {}
    for key, value in node.items():
        rule = RULES.get(".".join((*scope, str(key))))
        if rule is not None and rule.action == Action.REFUSE:
            continue
        child = (*scope, "*") if scope in _NAMED else (*scope, str(key))
        out[key] = without_refused_keys(value, child)
    return out


@st.composite
def schema_documents(draw: st.DrawFn) -> dict[str, Any]:
    """A Compose document from the schema, with at least one service (else most are refused
    for that alone and the rest of the parser is not reached); half of them without the keys
    ccs refuses and with an image for every service, so that some are accepted whole."""
    doc: dict[str, Any] = draw(from_schema(schema()))
    services = doc.get("services")
    if not isinstance(services, dict) or not services:
        service = draw(from_schema(schema()["definitions"]["service"], 1))
        doc["services"] = {"web": service}
    if draw(st.booleans()):
        doc = without_refused_keys(doc)
        for name, service in list(doc["services"].items()):
            if isinstance(service, dict):
                service["image"] = "local/busybox:1"
            else:
                doc["services"][name] = {"image": "local/busybox:1"}
    return doc
