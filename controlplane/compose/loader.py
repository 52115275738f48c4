"""YAML loading and schema validation.

ruamel.yaml reads YAML 1.2 (as Compose's Go parser does: ``no``/``on`` stay strings), refuses
duplicate keys, supports anchors and ``<<`` merges, and keeps line numbers, which we turn into a
``path -> line`` table so that later errors can say where to look. The tree is then converted to
plain ``dict``/``list``/scalars so the rest of the package never sees ruamel types.

Validation uses the official compose-spec.json with ``jsonschema``; its errors are translated
into field paths and plain sentences, picking the most relevant branch of ``oneOf`` choices.
"""

from __future__ import annotations

import contextlib
import datetime
import difflib
import functools
import json
import re
from importlib import resources
from typing import Any

from jsonschema import Draft7Validator
from jsonschema.exceptions import ValidationError, best_match
from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap, CommentedSeq, TaggedScalar
from ruamel.yaml.error import MarkedYAMLError, YAMLError
from ruamel.yaml.scalarint import ScalarInt

from controlplane.compose.errors import Diagnostics, FieldError, Path, TemplateError
from controlplane.compose.limits import ParseBudget, guarded_composer

_TYPE_WORDS = {
    "object": "a mapping",
    "array": "a list",
    "string": "a string",
    "integer": "an integer",
    "number": "a number",
    "boolean": "a boolean",
    "null": "empty",
}


@functools.cache
def compose_schema() -> dict[str, Any]:
    """The official Compose JSON schema shipped in this package (read once)."""
    text = resources.files("controlplane.compose").joinpath("schema/compose-spec.json").read_text()
    schema: dict[str, Any] = json.loads(text)
    return schema


@functools.cache
def _validator() -> Draft7Validator:
    return Draft7Validator(compose_schema())


def _leading_zero(node: int) -> bool:
    """An integer written with leading zeros (``0440``): ruamel keeps its width."""
    width = getattr(node, "_width", None)
    return type(node) is ScalarInt and isinstance(width, int) and width > len(str(abs(int(node))))


def _plain(node: Any, path: Path, positions: dict[Path, int], diag: Diagnostics, budget: ParseBudget) -> Any:
    budget.tick()
    if isinstance(node, CommentedMap):
        out: dict[str, Any] = {}
        for key, value in node.items():
            name = ("true" if key else "false") if isinstance(key, bool) else str(key)
            # Keys pulled in by a "<<" merge have no position of their own.
            with contextlib.suppress(KeyError, TypeError, IndexError):
                positions[(*path, name)] = node.lc.key(key)[0] + 1
            out[name] = _plain(value, (*path, name), positions, diag, budget)
        return out
    if isinstance(node, CommentedSeq):
        items = []
        for index, value in enumerate(node):
            with contextlib.suppress(KeyError, TypeError, IndexError):
                positions[(*path, index)] = node.lc.item(index)[0] + 1
            items.append(_plain(value, (*path, index), positions, diag, budget))
        return items
    if isinstance(node, TaggedScalar):
        diag.error(path, f"the YAML tag {node.tag.value} is not supported")
        return None
    if isinstance(node, bool) or node is None:
        return node
    if isinstance(node, int):
        if path and path[-1] == "mode" and _leading_zero(node):
            # Compose (Go's YAML) reads `mode: 0440` as octal, as YAML 1.1 did; YAML 1.2 reads it
            # as decimal 440 (0o670: group-writable). A permission mode follows Compose.
            digits = str(int(node))
            if set(digits) <= set("01234567"):
                return int(digits, 8)
            diag.error(path, f"0{digits} has a leading zero but is not octal (digits 0-7)")
            return None
        return int(node)
    if isinstance(node, float):
        return float(node)
    if isinstance(node, datetime.date):
        return node.isoformat()
    return str(node)


def load_yaml(
    template: str, budget: ParseBudget | None = None
) -> tuple[dict[str, Any], dict[Path, int], Diagnostics]:
    """Parse a template into plain data. Broken YAML raises TemplateError with line and column.

    The composer enforces the limits of ``controlplane.compose.limits`` (depth, alias
    expansion, ``budget``) before any plain data is built.
    """
    budget = budget or ParseBudget(cpu_clock=None)
    yaml = YAML(typ="rt")
    yaml.Composer = guarded_composer(budget)
    try:
        data = yaml.load(template)
    except MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark else ""
        problem = " ".join(str(p) for p in (exc.context, exc.problem) if p)
        problem = problem.split("\n")[0] if problem else "invalid YAML"
        raise TemplateError([FieldError("template", f"invalid YAML at {where}{problem}")]) from exc
    except YAMLError as exc:
        raise TemplateError([FieldError("template", f"invalid YAML: {exc}")]) from exc
    except TemplateError:
        raise  # a limit of controlplane.compose.limits, already worded for the user
    except (ValueError, OverflowError) as exc:
        # ruamel lets some bad input escape as plain errors, e.g. "\U7fffffff" -> chr() ValueError.
        raise TemplateError([FieldError("template", f"invalid YAML: {exc}")]) from exc
    if data is None:
        raise TemplateError([FieldError("template", "is empty; it needs at least 'services:'")])
    if not isinstance(data, CommentedMap):
        raise TemplateError([FieldError("template", "must be a YAML mapping with 'services:'")])
    positions: dict[Path, int] = {}
    diag = Diagnostics(positions)
    plain = _plain(data, (), positions, diag, budget)
    return plain, positions, diag


def _type_list(types: Any) -> str:
    names = [types] if isinstance(types, str) else list(types)
    words = [_TYPE_WORDS.get(t, t) for t in names]
    return words[0] if len(words) == 1 else ", ".join(words[:-1]) + " or " + words[-1]


def _kind(value: Any) -> str:
    for name, kind in (("boolean", bool), ("object", dict), ("array", list), ("string", str)):
        if isinstance(value, kind):
            return _TYPE_WORDS[name]
    if value is None:
        return "nothing"
    return _TYPE_WORDS["number"]


def _unknown_keys(err: ValidationError, path: Path, diag: Diagnostics) -> None:
    schema = err.schema if isinstance(err.schema, dict) else {}
    known = list(schema.get("properties", {}))
    patterns = list(schema.get("patternProperties", {}))
    instance = err.instance if isinstance(err.instance, dict) else {}
    for key in instance:
        if key in known or any(re.search(p, key) for p in patterns):
            continue
        if path == ("services",):
            continue  # service names get their own, clearer check
        close = difflib.get_close_matches(key, known, n=1)
        hint = f"; did you mean '{close[0]}'?" if close else ""
        diag.error((*path, key), f"unknown key (not in the Compose specification){hint}")


def _report(err: ValidationError, diag: Diagnostics, prefix: Path = ()) -> None:
    path: Path = (*prefix, *err.absolute_path)
    if err.validator in ("oneOf", "anyOf") and err.context:
        shallow = [e for e in err.context if (*prefix, *e.absolute_path) == path]
        if len(shallow) == len(err.context) and all(e.validator == "type" for e in shallow):
            types: list[str] = []
            for e in shallow:
                vv = e.validator_value
                types.extend([vv] if isinstance(vv, str) else vv)
            diag.error(path, f"must be {_type_list(dict.fromkeys(types))}, got {_kind(err.instance)}")
            return
        # Prefer the branch whose type matched: its errors are deeper or not about the type.
        candidates = [e for e in err.context if e.validator != "type" or (*prefix, *e.absolute_path) != path]
        _report(best_match(candidates or err.context), diag, prefix)
        return
    if err.validator == "type":
        diag.error(path, f"must be {_type_list(err.validator_value)}, got {_kind(err.instance)}")
    elif err.validator == "additionalProperties":
        _unknown_keys(err, path, diag)
    elif err.validator == "required":
        present = err.instance if isinstance(err.instance, dict) else {}
        for prop in err.validator_value:
            if prop not in present:
                diag.error((*path, prop), "is required")
    elif err.validator == "enum":
        options = ", ".join(str(v) for v in err.validator_value)
        diag.error(path, f"must be one of: {options} (got {err.instance!r})")
    elif err.validator == "uniqueItems":
        diag.error(path, "contains duplicate items")
    else:
        diag.error(path, err.message)


def validate_schema(doc: dict[str, Any], diag: Diagnostics) -> None:
    """Report every schema violation of an (interpolated) document into ``diag``."""
    report_schema_errors(_validator(), doc, diag)


def report_schema_errors(
    validator: Draft7Validator, instance: Any, diag: Diagnostics, prefix: Path = ()
) -> None:
    """Validate ``instance`` (found at ``prefix``) and report its errors as field errors."""
    for err in validator.iter_errors(instance):
        _report(err, diag, prefix)
