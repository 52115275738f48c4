"""Error and warning collection for the template parser.

Every stage reports into one `Diagnostics` collector instead of raising on the first problem, so
that a user fixing a template sees *all* the field errors at once. Paths are kept as tuples while
parsing and only formatted ("services.web.ports[0]") at the edge; the collector also knows the
YAML line of each path, so messages can point at the line the user has to edit.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, TypeVar

Path = tuple[str | int, ...]
_PLAIN_KEY = re.compile(r"[^\s\[\]\"\x00-\x1f\x7f]+")  # control characters are shown escaped
T = TypeVar("T")


def format_path(path: Path) -> str:
    """Render a tuple path the way users read it: ``services.web.ports[0].target``."""
    if not path:
        return "template"
    out = ""
    for part in path:
        if isinstance(part, int):
            out += f"[{part}]"
        elif not _PLAIN_KEY.fullmatch(part):
            out += f"[{json.dumps(part)}]"  # an empty or odd key stays visible: x[""], x["a b"]
        else:
            out += f".{part}" if out else part
    return out


@dataclass(frozen=True)
class FieldError:
    """One problem in a template: where (a dotted path) and what is wrong, in plain words."""

    path: str
    message: str

    def __str__(self) -> str:
        return f"{self.path}: {self.message}"


class TemplateError(ValueError):
    """A template was refused. Carries every field error found, not only the first."""

    def __init__(self, errors: list[FieldError]) -> None:
        self.errors = list(errors)
        super().__init__(str(self))

    def __str__(self) -> str:
        return "; ".join(str(e) for e in self.errors)


@dataclass
class Diagnostics:
    """Collects errors and warnings; knows YAML line numbers for paths when they are available."""

    positions: Mapping[Path, int] = field(default_factory=dict)
    errors: list[FieldError] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    def _where(self, path: Path) -> str:
        for end in range(len(path), 0, -1):
            line = self.positions.get(path[:end])
            if line is not None:
                return f" (line {line})"
        return ""

    def error(self, path: Path, message: str) -> None:
        item = FieldError(format_path(path), message + self._where(path))
        if item not in self.errors:
            self.errors.append(item)

    def warn(self, path: Path, message: str) -> None:
        line = f"{format_path(path)}: {message}{self._where(path)}"
        if line not in self.warnings:
            self.warnings.append(line)

    def convert(self, path: Path, convert: Callable[[Any], T], value: Any) -> T | None:
        """Run a converter that raises ValueError; report the failure at ``path``."""
        try:
            return convert(value)
        except ValueError as exc:
            self.error(path, str(exc))
            return None

    def raise_if_errors(self) -> None:
        if self.errors:
            raise TemplateError(self.errors)
