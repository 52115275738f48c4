"""Property: whatever Compose document arrives, the parser answers with a result or a TemplateError.

Never another exception (the API would turn it into INTERNAL), never a crash, never unbounded
work: the documents are real corpus templates mutated by ``tests.compose_fuzz``.
"""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings

from controlplane.compose import ParsedTemplate, TemplateError, parse_template
from tests.compose_fuzz import compose_documents


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(compose_documents())
def test_any_document_is_parsed_or_refused_with_field_errors(text: str) -> None:
    try:
        parsed = parse_template(text, env={}, files={".env": "X=1\n"}, app_name="app")
    except TemplateError as exc:
        assert exc.errors, "a refusal names at least one field"
        for error in exc.errors:
            assert error.path and error.message
    else:
        assert isinstance(parsed, ParsedTemplate) and parsed.services
