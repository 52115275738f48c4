"""Interpolation per the Compose spec: every form, nesting, $$, and errors."""

from __future__ import annotations

import pytest

from controlplane.compose.errors import Diagnostics
from controlplane.compose.interpolation import InterpolationError, interpolate, interpolate_tree

VARS = {"SET": "value", "EMPTY": "", "B": "bee", "PORT": "8080"}


def lookup(name: str) -> str | None:
    return VARS.get(name)


@pytest.mark.parametrize(
    ("text", "expected", "missing"),
    [
        ("plain", "plain", []),
        ("$SET", "value", []),
        ("${SET}", "value", []),
        ("a${SET}b", "avalueb", []),
        ("$SET-x", "value-x", []),
        ("${UNSET}", "", ["UNSET"]),
        ("$UNSET", "", ["UNSET"]),
        ("${SET:-d}", "value", []),
        ("${EMPTY:-d}", "d", []),
        ("${UNSET:-d}", "d", []),
        ("${SET-d}", "value", []),
        ("${EMPTY-d}", "", []),
        ("${UNSET-d}", "d", []),
        ("${SET:+alt}", "alt", []),
        ("${EMPTY:+alt}", "", []),
        ("${UNSET:+alt}", "", []),
        ("${SET+alt}", "alt", []),
        ("${EMPTY+alt}", "alt", []),
        ("${UNSET+alt}", "", []),
        ("${SET:?boom}", "value", []),
        ("${EMPTY?boom}", "", []),
        ("$$", "$", []),
        ("$${SET}", "${SET}", []),
        ("$$(cat /run/secret)", "$(cat /run/secret)", []),
        ("${UNSET:-${B}}", "bee", []),
        ("${UNSET:-${ALSO:-${B}x}}", "beex", []),
        ("${SET:-${NOT_USED}}", "value", []),  # defaults are expanded lazily: no warning
        ("${UNSET:-a:b}", "a:b", []),
        ("${UNSET:-$$}", "$", []),
        ("price: 5$", "price: 5$", []),
        ("$1 and $ alone", "$1 and $ alone", []),
        ("${lower_case}", "", ["lower_case"]),
        ("http://${HOST:-localhost}:${PORT}/", "http://localhost:8080/", []),
    ],
)
def test_interpolation_forms(text: str, expected: str, missing: list[str]) -> None:
    assert interpolate(text, lookup) == (expected, missing)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("${UNSET:?set UNSET please}", "required variable UNSET is missing a value: set UNSET please"),
        ("${EMPTY:?no empties}", "required variable EMPTY is missing a value: no empties"),
        ("${UNSET?}", "required variable UNSET is missing a value"),
        ("${UNSET:?need ${B}}", "required variable UNSET is missing a value: need bee"),
        ("${}", "invalid interpolation format"),
        ("${SET", "unclosed"),
        ("${1A}", "invalid interpolation format"),
        ("${SET*x}", "invalid interpolation format"),
        ("${A B}", "invalid interpolation format"),
    ],
)
def test_interpolation_errors(text: str, message: str) -> None:
    with pytest.raises(InterpolationError, match=message.replace("$", r"\$").replace("{", r"\{")):
        interpolate(text, lookup)


def test_tree_interpolates_values_not_keys_and_reports_paths() -> None:
    diag = Diagnostics()
    doc = {
        "services": {
            "${SET}": {"image": "app:${TAG}", "ports": ["${PORT}:80"], "replicas": 3},
            "db": {"environment": {"PW": "${PW:?the db password}"}},
        }
    }
    out = interpolate_tree(doc, lookup, diag)
    assert list(out["services"]) == ["${SET}", "db"]
    assert out["services"]["${SET}"]["image"] == "app:"
    assert out["services"]["${SET}"]["ports"] == ["8080:80"]
    assert out["services"]["${SET}"]["replicas"] == 3
    assert [(e.path, e.message) for e in diag.errors] == [
        ("services.db.environment.PW", "required variable PW is missing a value: the db password")
    ]
    assert diag.warnings == ['services.${SET}.image: variable "TAG" is not set; using an empty string']
