"""The support table covers every key the Compose schema allows, so nothing is silently lost."""

from __future__ import annotations

from typing import Any

import pytest

from controlplane.compose import RULES, Action, parse_template, support_table_markdown
from controlplane.compose.loader import compose_schema
from controlplane.compose.support import SCOPES


def _resolve(schema: dict[str, Any], node: dict[str, Any]) -> dict[str, Any]:
    while "$ref" in node:
        node = schema["definitions"][node["$ref"].split("/")[-1]]
    return node


def _object_branch(schema: dict[str, Any], node: dict[str, Any]) -> dict[str, Any]:
    node = _resolve(schema, node)
    for branch in node.get("oneOf", []):
        branch = _resolve(schema, branch)
        if "properties" in branch or "patternProperties" in branch:
            return branch
    return node


def _scope_schema(scope: tuple[str, ...]) -> dict[str, Any]:
    schema = compose_schema()
    node: dict[str, Any] = schema
    for part in scope:
        if part == "*":
            node = _object_branch(schema, next(iter(node["patternProperties"].values())))
        elif part == "[]":
            node = _object_branch(schema, node["items"])
        else:
            node = _object_branch(schema, node["properties"][part])
    return node


@pytest.mark.parametrize("scope", SCOPES, ids=lambda s: ".".join(s) or "top")
def test_every_schema_key_has_a_rule(scope: tuple[str, ...]) -> None:
    prefix = ".".join(scope)
    keys = set(_scope_schema(scope).get("properties", {}))
    missing = sorted(k for k in keys if (f"{prefix}.{k}" if prefix else k) not in RULES)
    assert not missing, f"no support rule for {missing} in {prefix or 'top level'}"


def test_every_refusal_and_warning_has_a_reason_and_is_in_the_readme_table() -> None:
    table = support_table_markdown()
    for key, rule in RULES.items():
        if rule.action is not Action.SUPPORTED:
            assert rule.reason, key
        assert f"| `{key}` | {rule.action.value} |" in table


def test_warned_keys_become_warnings_not_errors() -> None:
    text = "services:\n  web: {image: a, tty: true, stdin_open: true, logging: {driver: x}}\n"
    warnings = parse_template(text, env={}, files={}, app_name="app").warnings
    assert [w.split(":")[0] for w in warnings] == [
        "services.web.tty",
        "services.web.stdin_open",
        "services.web.logging",
    ]


def test_container_name_is_ignored_with_a_warning_as_swarm_does() -> None:
    text = "services:\n  web: {image: a, container_name: fixed, deploy: {replicas: 3}}\n"
    parsed = parse_template(text, env={}, files={}, app_name="app")
    assert parsed.services["web"].replicas == 3
    assert parsed.warnings[0].startswith("services.web.container_name: ignored: ccs names containers")
