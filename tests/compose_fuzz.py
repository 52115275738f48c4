"""Hostile and mutated Compose documents for the parser's property tests (unit and server).

Documents start from the real templates of ``tests/data/compose-corpus`` or from the official
schema (``tests.compose_schema``) and are mutated the ways a careless or hostile user would: keys deleted or duplicated, values swapped for another
type, anchors and aliases inserted (including an alias inside its own anchor), deep nesting,
odd unicode, huge numbers, and raw text edits that break the YAML itself.
"""

from __future__ import annotations

import contextlib
import itertools
from pathlib import Path
from typing import Any

import yaml
from hypothesis import strategies as st

from tests.compose_schema import schema_documents

CORPUS = Path(__file__).resolve().parent / "data" / "compose-corpus" / "awesome-compose"
CORPUS_TEXTS = sorted(
    p.read_text() for p in CORPUS.glob("*/*") if p.name in ("compose.yaml", "compose.yml", "docker-compose.yml")
)
ODD_TEXT = st.sampled_from(
    ["", " ", "\u0000", "\ufeff", "\u202e", "e\u0301", "\U0001f600", "\ud7ff", "$", "$$", "${", "${X:?boom}",
     "${X:-${Y:-${Z}}}", "~", "null", "yes", "0o777", "0x1F", ".inf", "1e400", "-", "- a", ": b", "*a", "&a",
     "!!python/object:os.system", "'", '"', "\t", "a" * 300, "\ud800", "a\udfffb", "a\u0000b"]
) | st.text(max_size=40)
TAINTS = st.sampled_from(["\u0000", "\ud800", "\udfff", "a\u0000"])
HUGE_NUMBERS = st.sampled_from([2**63, -(2**63) - 1, 10**400, 1e308, float("inf"), float("nan"), -0.0, 2**1000])
SCALARS = st.none() | st.booleans() | st.integers() | HUGE_NUMBERS | ODD_TEXT


def billion_laughs(levels: int = 10) -> str:
    """The classic alias bomb (about 450 bytes): each level lists nine aliases of the one below."""
    lines = ['x-a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]']
    names = "abcdefghijklmnopqrstuvwxyz"[:levels]
    for prev, name in itertools.pairwise(names):
        lines.append(f"x-{name}: &{name} [" + ",".join(f"*{prev}" for _ in range(9)) + "]")
    return "\n".join(lines) + f"\nservices:\n  web:\n    image: nginx\n    x-bomb: *{names[-1]}\n"


def nested(depth: int, leaf: Any = 1) -> Any:
    value = leaf
    for _ in range(depth):
        value = [value]
    return value


def _paths(node: Any, path: tuple[Any, ...] = (), seen: set[int] | None = None) -> list[tuple[Any, ...]]:
    """Every path into the document, each shared or looping collection walked once."""
    seen = set() if seen is None else seen
    out = [path]
    if isinstance(node, dict | list) and (id(node) in seen or len(path) > 50):
        return out
    seen.add(id(node))
    if isinstance(node, dict):
        for k, v in node.items():
            out += _paths(v, (*path, k), seen)
    elif isinstance(node, list):
        for i, v in enumerate(node):
            out += _paths(v, (*path, i), seen)
    return out


def _get(node: Any, path: tuple[Any, ...]) -> Any:
    for part in path:
        node = node[part]
    return node


@st.composite
def _mutate_tree(draw: st.DrawFn, doc: Any) -> Any:
    """One structural mutation of a plain document (changed in place, returned)."""
    paths = _paths(doc)
    path = draw(st.sampled_from(paths))
    kind = draw(st.sampled_from(["delete", "swap", "deep", "share", "cycle", "add", "taint"]))
    if not path:
        return draw(SCALARS | st.lists(SCALARS, max_size=3)) if kind == "swap" else doc
    parent, last = _get(doc, path[:-1]), path[-1]
    if kind == "delete":
        del parent[last]
    elif kind == "swap":
        parent[last] = draw(SCALARS | st.lists(SCALARS, max_size=3) | st.dictionaries(ODD_TEXT, SCALARS, max_size=3))
    elif kind == "deep":
        parent[last] = nested(draw(st.sampled_from([5, 99, 101, 500])), parent[last])
    elif kind == "share":
        # The same object in two places: yaml.dump writes an anchor and an alias.
        other = draw(st.sampled_from(paths))
        if other and not isinstance(_get(doc, other[:-1]), str):
            _get(doc, other[:-1])[other[-1]] = parent[last]
    elif kind == "cycle" and isinstance(parent[last], dict | list):
        target = parent[last]
        if isinstance(target, dict):
            target["x-loop"] = target
        else:
            target.append(target)
    elif kind == "add" and isinstance(parent, dict):
        parent[draw(ODD_TEXT)] = draw(SCALARS)
    elif kind == "taint" and isinstance(parent[last], str):
        # The same value with a character no option can hold: the document stays valid otherwise.
        parent[last] += draw(TAINTS)
    return doc


@st.composite
def _mutate_text(draw: st.DrawFn, text: str) -> str:
    """One raw text mutation: duplicated or deleted lines, inserted characters, truncation."""
    lines = text.splitlines(keepends=True) or [""]
    i = draw(st.integers(0, len(lines) - 1))
    kind = draw(st.sampled_from(["dup", "delete", "insert", "truncate", "bomb", "deep"]))
    if kind == "dup":
        lines.insert(i, lines[i])
    elif kind == "delete":
        del lines[i]
    elif kind == "insert":
        at = draw(st.integers(0, len(lines[i])))
        lines[i] = lines[i][:at] + draw(ODD_TEXT) + lines[i][at:]
    elif kind == "truncate":
        return text[: draw(st.integers(0, len(text)))]
    elif kind == "bomb":
        return text + "\n" + billion_laughs(draw(st.integers(2, 10))).replace("services:", "x-s:", 1)
    else:  # PyYAML cannot write these depths (it recurses too), so they are added as text
        depth = draw(st.sampled_from([98, 99, 100, 500, 10_000]))
        opener, closer = draw(st.sampled_from([("[", "]"), ("{a: ", "}")]))
        return text + "\nx-deep: " + opener * depth + "1" + closer * depth + "\n"
    return "".join(lines)


@st.composite
def compose_documents(draw: st.DrawFn) -> str:
    """A corpus template or a schema-generated document after a few structural and textual mutations."""
    text = draw(st.sampled_from(CORPUS_TEXTS))
    doc = yaml.safe_load(text) if draw(st.booleans()) else draw(schema_documents())
    for _ in range(draw(st.integers(0, 3))):
        doc = draw(_mutate_tree(doc))
    allow_unicode = draw(st.booleans())
    # Keep the previous text when a mutation made something PyYAML cannot write.
    with contextlib.suppress(yaml.YAMLError, RecursionError, ValueError):
        text = yaml.safe_dump(doc, sort_keys=False, allow_unicode=allow_unicode)
    for _ in range(draw(st.integers(0, 2))):
        text = draw(_mutate_text(text))
    return text


def on_the_wire(text: str) -> str:
    """``text`` as a client can send it: a lone surrogate (``\\ud800``), which a Python string
    holds and UTF-8 cannot, becomes ``?``. protobuf refuses to serialize it, so no server ever
    receives one; the parser's own property test (tests/unit) still gets them raw, and invalid
    UTF-8 bytes on the wire are sent by ``test_invalid_utf8_in_any_string_field_is_refused_naming_it``."""
    return text.encode("utf-8", "replace").decode("utf-8")
