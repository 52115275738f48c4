"""Compose profiles: which of a template's services a deploy includes.

As in Compose, a service without ``profiles:`` is always deployed and a service with
``profiles:`` only when one of its profiles is chosen; ``*`` chooses every profile. Profiles are
chosen with ``--profile P`` (repeatable) on ``ccs app deploy`` and ``ccs app update``; when
none is chosen, ``COMPOSE_PROFILES`` (comma-separated, from ``--env`` or ``.env``) chooses,
which is where Compose reads it too.

One difference from ``docker compose``, where profiles are chosen per command: ccs stores the
chosen profiles with the application (``ApplicationSpec.profiles``) and an update that names
none keeps them. A ccs update redeploys the whole application, so forgetting the flag on a
later ``ccs app update --env X=1`` would otherwise remove the profile's running services.
``ccs app update --profile Q`` replaces the choice, ``--no-profiles`` clears it, and a
rollback restores the choice of the revision it goes back to.

A service that depends on a service its profiles leave out is refused, naming the profile
to add (an optional dependency, ``required: false``, is dropped with a warning).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from controlplane.compose.errors import Diagnostics, Path

# Compose's profile names (compose-go's loader).
_NAME = re.compile(r"[a-zA-Z0-9][a-zA-Z0-9_.-]*")
ALL = "*"


def _check(names: Sequence[str], path: Path, diag: Diagnostics, *, star: bool) -> None:
    for index, name in enumerate(names):
        if not (_NAME.fullmatch(name) or (star and name == ALL)):
            diag.error((*path, index), f"{name!r} is not a profile name (letters, digits, '_', '.', '-')")


@dataclass(frozen=True)
class Profiles:
    """The profiles chosen and those of each service that has some."""

    chosen: frozenset[str]
    of_service: Mapping[str, list[str]]

    @classmethod
    def choose(
        cls,
        requested: Sequence[str],
        lookup: Callable[[str], str | None],
        services: Mapping[str, Any],
        diag: Diagnostics,
    ) -> Profiles:
        names, where = list(requested), ("profiles",)
        if not names:
            names = [n.strip() for n in (lookup("COMPOSE_PROFILES") or "").split(",") if n.strip()]
            where = ("COMPOSE_PROFILES",)
        _check(names, where, diag, star=True)
        of_service: dict[str, list[str]] = {}
        for name, svc in services.items():
            if isinstance(svc, dict) and svc.get("profiles"):
                of_service[name] = [str(p) for p in svc["profiles"]]
                _check(of_service[name], ("services", name, "profiles"), diag, star=False)
        known = {p for profiles in of_service.values() for p in profiles}
        for name in names:
            if name != ALL and name not in known:
                diag.warn(where, f"profile {name!r} is not used by any service")
        return cls(frozenset(names), of_service)

    def includes(self, service: str) -> bool:
        profiles = self.of_service.get(service)
        return not profiles or ALL in self.chosen or not self.chosen.isdisjoint(profiles)

    def why_excluded(self, service: str) -> str | None:
        """Why ``service`` is left out, or None if it is not (or not defined at all)."""
        if service not in self.of_service or self.includes(service):
            return None
        profiles = self.of_service[service]
        return (
            f"is not deployed: its profiles ({', '.join(profiles)}) are not chosen; "
            f"add --profile {profiles[0]}"
        )

    def nothing_chosen(self) -> str:
        return "every service has profiles: and none of them is chosen; deploy with --profile NAME"
