"""The .env parser: comments, quotes, export, escapes, interpolation of earlier variables."""

from __future__ import annotations

import pytest

from controlplane.compose.dotenv import DotenvError, parse_dotenv


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("A=1\nB=2\n", {"A": "1", "B": "2"}),
        ("# comment\n\n  # indented comment\nA=1", {"A": "1"}),
        ("export A=1\nexport\tB=2", {"A": "1", "B": "2"}),
        ("A = spaced  \n", {"A": "spaced"}),
        ("A=value # inline comment", {"A": "value"}),
        ("A=no#comment", {"A": "no#comment"}),
        ("A= # only a comment", {"A": ""}),
        ("A=", {"A": ""}),
        ("A='single $B \\n # kept'", {"A": "single $B \\n # kept"}),
        ('A="double # kept"', {"A": "double # kept"}),
        ('A="tab\\there\\nline \\"q\\" \\\\"', {"A": 'tab\there\nline "q" \\'}),
        ('A="multi\nline"\nB=2', {"A": "multi\nline", "B": "2"}),
        ("A='x' # trailing comment", {"A": "x"}),
        ("A=1\nB=${A}2\nC=$A$B", {"A": "1", "B": "12", "C": "112"}),
        ('A=1\nB="${A:-x}-${Z:-z}"', {"A": "1", "B": "1-z"}),
        ('A="cost \\$5"', {"A": "cost $5"}),
        ("A=$$literal", {"A": "$literal"}),
        ("A=1\nA=2", {"A": "2"}),
        ("\ufeffA=1\r\nB=2\r\n", {"A": "1", "B": "2"}),
        ("VPN=x.dyndns.com # free examples http://www.duckdns.org/", {"VPN": "x.dyndns.com"}),
        ("dotted.key=1\nwith-dash=2", {"dotted.key": "1", "with-dash": "2"}),
    ],
)
def test_dotenv_parses(text: str, expected: dict[str, str]) -> None:
    assert parse_dotenv(text) == expected


def test_dotenv_bare_key_takes_value_from_lookup_and_outer_values_are_seen() -> None:
    outer = {"FROM_DEPLOY": "d", "INHERIT": "i"}
    assert parse_dotenv("INHERIT\nMISSING\nX=${FROM_DEPLOY}", outer.get) == {"INHERIT": "i", "X": "d"}


def test_dotenv_earlier_file_values_win_over_lookup_inside_the_file() -> None:
    assert parse_dotenv("A=file\nB=$A", {"A": "outer"}.get) == {"A": "file", "B": "file"}


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("A=1\n1BAD=2", "line 2: invalid variable name"),
        ("A 1", "line 1: expected '='"),
        ('A="open', 'line 1: unterminated " quote'),
        ("A=1\n\nB='x' junk", "line 3: unexpected text after the closing quote"),
        ("A=${REQ:?needed}", "line 1: A: required variable REQ is missing a value: needed"),
    ],
)
def test_dotenv_errors_name_the_line(text: str, message: str) -> None:
    with pytest.raises(DotenvError) as info:
        parse_dotenv(text)
    assert message in str(info.value)
