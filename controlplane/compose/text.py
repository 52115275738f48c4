"""Strings no container option can hold: NUL bytes and lone surrogates, refused by path.

YAML lets a double-quoted scalar spell any code point as an escape, so ``"a\\0b"`` and
``"\\ud800"`` reach the parsed document although neither can be typed into the file:

- a **NUL** ends a C string, so the engine, ``execve`` and HAProxy would each keep only the part
  before it, and a command or environment value would silently change;
- a **lone surrogate** (``\\ud800``-``\\udfff``) is not a character: it has no UTF-8 form, so
  protobuf refused to store it and the parse ended in an exception instead of an error.

Both are refused here, after interpolation (a deploy-time value can bring them too), with the
path of the key or value that holds them. Pure: one walk of the document.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from controlplane.compose.errors import Diagnostics, Path

_BAD = re.compile("[\x00\ud800-\udfff]")


def _problem(text: str) -> str | None:
    found = _BAD.search(text)
    if found is None:
        return None
    if found.group() == "\x00":
        return f"contains a NUL byte (\\0, at character {found.start()}), which no container option can hold"
    return (f"contains a lone surrogate (\\u{ord(found.group()):04x}, at character {found.start()}), "
            "which is not a character and has no UTF-8 form")


def check_text_tree(node: Any, diag: Diagnostics, tick: Callable[[], None], path: Path = ()) -> None:
    """Report every key and string value under ``node`` that holds a NUL or a lone surrogate."""
    tick()
    if isinstance(node, dict):
        for key, value in node.items():
            if isinstance(key, str) and (problem := _problem(key)) is not None:
                diag.error((*path, key), f"the key {problem}")
            check_text_tree(value, diag, tick, (*path, key))
    elif isinstance(node, list):
        for i, value in enumerate(node):
            check_text_tree(value, diag, tick, (*path, i))
    elif isinstance(node, str) and (problem := _problem(node)) is not None:
        diag.error(path, problem)
