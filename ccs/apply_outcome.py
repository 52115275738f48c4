"""``applications.apply``: what decides "unchanged", kept pure (no I/O, no client).

Apply is declarative: the request says what the application must be (its template, the files
bundled with it, its parameters, its profiles), so it is compared with what the server stores
and answers (``GetApplication``). Equal means nothing to write: no revision, no release, no
event. ``version`` and ``labels`` follow ``ccs app update``: an empty version keeps the current
one, and labels are set (a label not named is kept).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Literal

from ccs.v1 import resources_pb2

__all__ = ["ApplyResult", "Outcome", "same_as_stored"]

Outcome = Literal["created", "updated", "unchanged"]


@dataclass(frozen=True)
class ApplyResult:
    """What ``applications.apply`` did: ``outcome`` and the application as it now stands."""

    application: resources_pb2.Application
    outcome: Outcome

    @property
    def changed(self) -> bool:
        return self.outcome != "unchanged"


def same_as_stored(
    app: resources_pb2.Application,
    *,
    template: str,
    files: Mapping[str, str],
    env: Mapping[str, str],
    version: str,
    labels: Mapping[str, str],
    profiles: Iterable[str],
) -> bool:
    """True when applying these would change nothing in ``app`` (as ``GetApplication`` answers)."""
    spec = app.spec
    return (
        spec.template == template
        and dict(spec.files) == dict(files)
        and dict(spec.env) == dict(env)
        and (not version or spec.version == version)
        and all(app.meta.labels.get(k, "") == v for k, v in labels.items())
        and list(spec.profiles) == list(dict.fromkeys(profiles))
    )
