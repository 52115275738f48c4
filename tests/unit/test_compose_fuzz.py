"""Property: whatever Compose document arrives, the parser answers with a result or a TemplateError.

Never another exception (the API would turn it into INTERNAL), never a crash, never unbounded
work, and what it accepts can be stored: every spec serializes (protobuf refuses a lone
surrogate) and holds no NUL byte (no container option can). The documents are real corpus
templates or documents drawn from the official schema, mutated by ``tests.compose_fuzz``.
"""

from __future__ import annotations

from typing import Any

import yaml
from hypothesis import HealthCheck, given, settings

from controlplane.compose import ParsedTemplate, TemplateError, parse_template
from tests.compose_fuzz import compose_documents
from tests.compose_schema import schema_documents

# Derandomized: a failure in CI reproduces on a laptop.
FUZZ = settings(deadline=None, derandomize=True, database=None, suppress_health_check=[HealthCheck.too_slow])


def _parsed_or_refused(text: str) -> None:
    try:
        parsed = parse_template(text, env={}, files={".env": "X=1\n"}, app_name="app")
    except TemplateError as exc:
        assert exc.errors, "a refusal names at least one field"
        for error in exc.errors:
            assert error.path and error.message
    else:
        assert isinstance(parsed, ParsedTemplate) and parsed.services
        for spec in parsed.services.values():
            spec.SerializeToString()  # what storing it does
            assert "\\000" not in str(spec), spec  # how protobuf's text format writes a NUL


@settings(FUZZ, max_examples=300)
@given(compose_documents())
def test_any_document_is_parsed_or_refused_with_field_errors(text: str) -> None:
    _parsed_or_refused(text)


@settings(FUZZ, max_examples=150)
@given(schema_documents())
def test_any_document_the_schema_allows_is_parsed_or_refused_with_field_errors(doc: dict[str, Any]) -> None:
    _parsed_or_refused(yaml.safe_dump(doc, sort_keys=False, allow_unicode=True))
