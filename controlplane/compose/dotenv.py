"""Parser for ``.env`` and ``env_file`` files, following Compose's dotenv rules.

Rules (as in compose-go's dotenv package):

- blank lines and lines starting with ``#`` are ignored; an ``export `` prefix is allowed;
- ``KEY=VALUE``; unquoted values are trimmed and end at an inline comment (`` #``);
- ``'single quoted'`` values are literal (no escapes, no interpolation) and may span lines;
- ``"double quoted"`` values understand ``\\n``, ``\\r``, ``\\t``, ``\\\\``, ``\\"`` and ``\\$``,
  may span lines, and are interpolated like unquoted values;
- ``${VAR}`` and friends in a value see the variables defined *earlier in the same file* first,
  then the caller's ``lookup`` (ccs passes the deploy-time parameters, never ``os.environ``);
- a bare ``KEY`` with no ``=`` takes its value from ``lookup``, and is skipped when unset.
"""

from __future__ import annotations

import re

from controlplane.compose.interpolation import InterpolationError, Lookup, interpolate

_KEY = re.compile(r"[A-Za-z_][A-Za-z0-9_.\-]*")
_ESCAPES = {"n": "\n", "r": "\r", "t": "\t", "\\": "\\", '"': '"', "$": "$$"}


class DotenvError(ValueError):
    """A malformed line; the message starts with its line number."""

    def __init__(self, line: int, message: str) -> None:
        super().__init__(f"line {line}: {message}")
        self.line = line


def _no_lookup(_: str) -> str | None:
    return None


def _unescape(raw: str) -> str:
    # "\$" becomes "$$" so that the interpolation that follows turns it into a literal "$".
    return re.sub(r"\\(.)", lambda m: _ESCAPES.get(m.group(1), "\\" + m.group(1)), raw, flags=re.S)


def _closing_quote(text: str, start: int, quote: str) -> int:
    i = start
    while i < len(text):
        if quote == '"' and text[i] == "\\":
            i += 2
            continue
        if text[i] == quote:
            return i
        i += 1
    return -1


def parse_dotenv(text: str, lookup: Lookup | None = None) -> dict[str, str]:
    """Parse a dotenv file into an ordered mapping. Raises DotenvError naming the line."""
    outer = lookup or _no_lookup
    values: dict[str, str] = {}

    def scoped(name: str) -> str | None:
        return values[name] if name in values else outer(name)

    text = text.removeprefix("\ufeff").replace("\r\n", "\n")
    if "\0" in text:  # an environment value cannot hold one (see compose.text)
        nul = text.index("\0")
        raise DotenvError(text.count("\n", 0, nul) + 1,
                          "contains a NUL byte (\\0), which no environment value can hold")
    pos = 0
    while pos < len(text):
        line_no = text.count("\n", 0, pos) + 1
        eol = text.find("\n", pos)
        eol = len(text) if eol < 0 else eol
        line = text[pos:eol].strip()
        if not line or line.startswith("#"):
            pos = eol + 1
            continue
        start = pos + (len(text[pos:eol]) - len(text[pos:eol].lstrip()))
        if text.startswith("export ", start) or text.startswith("export\t", start):
            start += 7
            while start < eol and text[start] in " \t":
                start += 1
        match = _KEY.match(text, start)
        if match is None:
            raise DotenvError(line_no, f"invalid variable name in {line!r}")
        key = match.group()
        rest = text[match.end() : eol].lstrip(" \t")
        if not rest or rest.startswith("#"):
            inherited = outer(key)
            if inherited is not None:
                values[key] = inherited
            pos = eol + 1
            continue
        if not rest.startswith("="):
            raise DotenvError(line_no, f"expected '=' after {key!r}")
        value_start = text.index("=", match.end()) + 1
        while value_start < eol and text[value_start] in " \t":
            value_start += 1
        quote = text[value_start] if value_start < eol else ""
        if quote in ("'", '"'):
            close = _closing_quote(text, value_start + 1, quote)
            if close < 0:
                raise DotenvError(line_no, f"unterminated {quote} quote in the value of {key!r}")
            raw = text[value_start + 1 : close]
            after_eol = text.find("\n", close)
            after_eol = len(text) if after_eol < 0 else after_eol
            trailing = text[close + 1 : after_eol].strip()
            if trailing and not trailing.startswith("#"):
                raise DotenvError(line_no, f"unexpected text after the closing quote: {trailing!r}")
            pos = after_eol + 1
            if quote == "'":
                values[key] = raw
                continue
            raw = _unescape(raw)
        else:
            raw = text[value_start:eol]
            # An inline comment starts at a "#" preceded by whitespace, as in "KEY= # note".
            spaced = text[value_start - 1] in " \t"
            comment = re.search(r"\s#", raw)
            if spaced and raw.startswith("#"):
                raw = ""
            elif comment is not None:
                raw = raw[: comment.start()]
            raw = raw.strip()
            pos = eol + 1
        try:
            values[key] = interpolate(raw, scoped)[0]
        except InterpolationError as exc:
            raise DotenvError(line_no, f"{key}: {exc}") from exc
    return values
