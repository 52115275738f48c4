"""Settings that several parts of a template can ask for, and the check that they agree.

Replicas can come from ``deploy.replicas``, ``scale`` and the ``aliyun.scale`` label; the release
strategy from ``aliyun.rolling_updates`` and ``x-ccs.strategy``; and so on. Each source records a
*claim*; when two claims for the same setting differ the template is refused with an error that
names both, rather than silently picking a winner.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from controlplane.compose.errors import Diagnostics, Path, format_path


def _short(path: Path) -> str:
    # Inside one service, "deploy.replicas" reads better than "services.web.deploy.replicas".
    return format_path(path[2:]) if len(path) > 2 and path[0] == "services" else format_path(path)


@dataclass(frozen=True)
class Claim:
    path: Path
    value: Any
    shown: str


@dataclass
class Claims:
    items: dict[str, list[Claim]] = field(default_factory=dict)

    def add(self, setting: str, path: Path, value: Any, shown: Any = None) -> None:
        """Record that ``path`` asks for ``value``; ``shown`` is how the user wrote it."""
        text = value if shown is None else shown
        self.items.setdefault(setting, []).append(Claim(path, value, str(text)))

    def resolve(self, diag: Diagnostics) -> dict[str, Any]:
        """One value per setting; disagreeing claims become errors naming both sources."""
        out: dict[str, Any] = {}
        for setting, claims in self.items.items():
            first = claims[0]
            for other in claims[1:]:
                if other.value != first.value:
                    diag.error(
                        other.path,
                        f"{_short(other.path)}={other.shown} disagrees with "
                        f"{_short(first.path)}={first.shown}; remove one or make them equal",
                    )
            out[setting] = first.value
        return out
