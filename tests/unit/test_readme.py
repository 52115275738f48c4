"""The README's Compose table is generated from the same rules that drive the parser."""

from __future__ import annotations

import re
from pathlib import Path

from controlplane.compose import support_table_markdown

README = Path(__file__).resolve().parents[2] / "README.md"
MARKERS = re.compile(r"<!-- compose-support:start -->\n(.*?)<!-- compose-support:end -->", re.S)


def render(text: str) -> str:
    return MARKERS.sub(
        lambda _: f"<!-- compose-support:start -->\n{support_table_markdown()}\n<!-- compose-support:end -->", text
    )


def test_readme_compose_table_is_current() -> None:
    text = README.read_text()
    assert MARKERS.search(text), "README lost its compose-support markers"
    assert render(text) == text, "README table is stale: run python tests/unit/test_readme.py"


if __name__ == "__main__":
    README.write_text(render(README.read_text()))
