"""Hostile templates cost bounded work: alias expansion, nesting, interpolation and CPU limits."""

from __future__ import annotations

import itertools
import time

import pytest

from controlplane.compose import (
    MAX_ALIAS_NODES,
    MAX_DEPTH,
    ParseBudget,
    ParseCancelled,
    TemplateError,
    parse_template,
)
from controlplane.compose.interpolation import MAX_NESTING
from tests.compose_fuzz import billion_laughs

HEAD = "services:\n  web:\n    image: nginx\n"


def parse(text: str, budget: ParseBudget | None = None) -> object:
    return parse_template(text, env={}, files={}, app_name="app", budget=budget)


def refusal(text: str) -> str:
    with pytest.raises(TemplateError) as info:
        parse(text)
    return str(info.value)


def test_billion_laughs_is_refused_naming_the_alias_limit() -> None:
    text = billion_laughs()
    assert len(text.encode()) < 600
    message = refusal(text)
    assert message.startswith("template: aliases expand to more than 100000 nodes")
    assert f"the limit is {MAX_ALIAS_NODES} nodes copied by aliases" in message


def test_aliases_up_to_the_budget_are_expanded() -> None:
    # One anchored list of 999 items is 1,000 nodes; 99 aliases copy 99,000 nodes.
    anchor = "x-big: &big [" + ",".join(["1"] * 999) + "]\n"
    ok = HEAD + anchor + "x-copies: [" + ",".join(["*big"] * 99) + "]\n"
    parse(ok)
    over = HEAD + anchor + "x-copies: [" + ",".join(["*big"] * 101) + "]\n"
    assert "aliases expand to more than" in refusal(over)


def test_an_alias_inside_its_own_anchor_is_refused() -> None:
    assert "alias *l at line 4 refers to the collection it is part of" in refusal(HEAD + "x-l: &l [1, *l]\n")
    looped = "services:\n  web: &w\n    image: nginx\n    x-self: *w\n"
    assert "alias *w at line 4 refers to the collection it is part of" in refusal(looped)


@pytest.mark.parametrize("depth", [MAX_DEPTH - 2, MAX_DEPTH - 1])
def test_nesting_up_to_the_limit_parses(depth: int) -> None:
    # The root mapping is one level; so 99 nested lists under it make 100.
    parse(HEAD + "x-deep: " + "[" * depth + "]" * depth + "\n")


@pytest.mark.parametrize("depth", [MAX_DEPTH, 500, 10_000])
def test_deeper_nesting_is_refused_naming_the_depth_limit(depth: int) -> None:
    message = refusal(HEAD + "x-deep: " + "[" * depth + "]" * depth + "\n")
    assert message == (
        "template: nesting deeper than 100 levels at line 4; the limit is 100 levels of mappings and lists"
    )


def test_deep_block_style_nesting_is_refused_too() -> None:
    block = HEAD + "x-deep:\n" + "".join("  " * (i + 1) + "-\n" for i in range(500))
    assert "nesting deeper than 100 levels" in refusal(block)


def test_interpolation_nested_past_its_limit_is_refused_with_the_field() -> None:
    def template(levels: int) -> str:
        return HEAD + "    environment:\n      A: " + "${A:-" * levels + "x" + "}" * levels + "\n"

    parsed = parse_template(template(MAX_NESTING), env={}, files={}, app_name="app")
    assert parsed.services["web"].environment["A"] == "x"
    for levels in (MAX_NESTING + 1, 10_000):
        assert refusal(template(levels)) == (
            "services.web.environment.A: interpolation nested more than 20 levels deep; "
            "the limit is 20 (line 5)"
        )


def test_a_parse_over_its_cpu_budget_is_refused_naming_the_limit() -> None:
    text = HEAD + "x-list: [" + ",".join(["1"] * 2000) + "]\n"
    parse(text, ParseBudget(cpu_clock=time.thread_time))  # well within the default budget
    seconds = itertools.count()  # a CPU clock that advances one second per reading
    with pytest.raises(TemplateError) as info:
        parse(text, ParseBudget(cpu_seconds=0.5, cpu_clock=lambda: float(next(seconds))))
    assert str(info.value) == (
        "template: parsing used more than 0.5 s of CPU time, the limit for one template; "
        "make the template smaller"
    )


def test_a_budget_without_a_clock_sets_no_cpu_limit() -> None:
    text = HEAD + "x-list: [" + ",".join(["1"] * 2000) + "]\n"
    parse(text, ParseBudget(cpu_seconds=0.0, cpu_clock=None))


def test_a_cancelled_budget_stops_the_parse() -> None:
    budget = ParseBudget(cpu_clock=None)
    budget.cancel()
    with pytest.raises(ParseCancelled):
        parse(HEAD, budget)
