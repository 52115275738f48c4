"""Pure models of the SDK: release phases, canary options and the canary step syntax.

Why a module of its own: these are values, not calls. The CLI builds them from flags and the
SDK sends them, so they must be importable without a channel; keeping them here (no grpc, no
I/O, only the generated messages) is also what breaks the old import circle between
``ccs.applications`` (which sends ``CanaryOptions``) and ``ccs.releases`` (which defined it).

``parse_steps`` is input validation, not an API error: it raises ``StepsError``, a
``ValueError`` naming the token and why. Pause durations use the one duration syntax of
``ccs.durations``.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field

from ccs.durations import DurationError, parse_ms
from ccs.release_phases import TERMINAL_PHASES  # the one definition (also the server's)
from ccs.v1 import api_pb2, resources_pb2

__all__ = [
    "TERMINAL_PHASES",
    "CanaryOptions",
    "StepsError",
    "parse_steps",
    "phase_name",
]

P = resources_pb2.ReleasePhase


def phase_name(phase: int) -> str:
    """``RELEASE_PHASE_ROLLED_BACK`` -> ``rolled-back`` (``-`` when unset)."""
    if phase not in P.values() or phase == resources_pb2.RELEASE_PHASE_UNSPECIFIED:
        return "-" if phase == 0 else str(phase)
    return str(P.Name(phase)).removeprefix("RELEASE_PHASE_").lower().replace("_", "-")


@dataclass
class CanaryOptions:
    """The canary fields of an application update (``--strategy canary``).

    Unset (None) analysis fields leave the analysis to the server: when none is set, no
    ``canary_analysis`` is sent and the server's default applies (5xx ratio 0.05 after 20
    requests); sending zeros instead would *disable* the 5xx check (0 disables, per the proto).
    When one is set, the analysis is sent with the unset ones as 0. ``replicas`` 0 and no
    ``steps`` also mean the server's defaults (1 canary container; 10%, 50%, 100%).
    """

    replicas: int = 0
    steps: Sequence[resources_pb2.CanaryStep] = field(default_factory=list)
    max_5xx_ratio: float | None = None
    min_requests: int | None = None
    max_unhealthy: int | None = None
    match_header: str = ""
    match_cookie: str = ""
    match_value: str = ""

    def validate(self) -> None:
        """Raise ``ValueError`` naming the field when an option is out of range; where the server
        checks the same thing, with the server's message."""
        if self.replicas < 0:
            raise ValueError(f"canary_replicas: must be >= 0, got {self.replicas}")
        if self.max_5xx_ratio is not None and not 0.0 <= self.max_5xx_ratio <= 1.0:
            raise ValueError(f"canary_analysis.max_5xx_ratio: {self.max_5xx_ratio} is not a ratio between 0 and 1")
        for name, value in (("min_requests", self.min_requests), ("max_unhealthy", self.max_unhealthy)):
            if value is not None and value < 0:
                raise ValueError(f"canary_analysis.{name}: must be >= 0, got {value}")
        if (self.match_header or self.match_cookie) and not self.match_value:
            raise ValueError("match_value: A/B routing by header or cookie needs the value to match")
        if self.match_header and self.match_cookie:
            raise ValueError("match_cookie: choose a header or a cookie, not both")
        if self.match_value and not (self.match_header or self.match_cookie):
            raise ValueError("match_value: only meaningful with match_header or match_cookie")

    def apply(self, req: api_pb2.UpdateApplicationRequest) -> None:
        """Validate, then copy the options into an update request."""
        self.validate()
        req.canary_replicas = self.replicas
        req.canary_steps.extend(self.steps)
        if (self.max_5xx_ratio, self.min_requests, self.max_unhealthy) != (None, None, None):
            req.canary_analysis.CopyFrom(resources_pb2.CanaryAnalysis(
                max_5xx_ratio=self.max_5xx_ratio or 0.0, min_requests=self.min_requests or 0,
                max_unhealthy=self.max_unhealthy or 0,
            ))
        req.match_header, req.match_cookie = self.match_header, self.match_cookie
        req.match_value = self.match_value


# ---------------------------------------------------------------- canary step syntax


class StepsError(ValueError):
    """A canary step list that does not parse; the message names the token and why."""


_WEIGHT = re.compile(r"^(\d+)%$")


def _pause_ms(text: str) -> int:
    """A pause: the shared duration syntax, more than 0 and at least a millisecond."""
    try:
        ms = parse_ms(text)
    except DurationError as exc:
        raise StepsError(str(exc)) from None
    if ms <= 0:
        raise StepsError(f"must be more than 0ms, got {text!r}")
    return ms


def parse_steps(text: str) -> list[resources_pb2.CanaryStep]:
    """``"10%,pause 30s,50%,pause,100%"`` -> canary steps.

    ``N%`` starts a step with N percent of traffic on the new revision (0..100, increasing);
    ``pause D`` after it holds the step for D (and analyses it) before the next one; a bare
    ``pause`` waits for a manual promote. Every step but the last needs a pause, so that
    "hold until promoted" is always written out; the last may omit it.
    """
    tokens = [t.strip() for t in text.split(",")]
    if not text.strip():
        raise StepsError("steps: at least one step is required, e.g. '10%,pause 30s,100%'")
    steps: list[resources_pb2.CanaryStep] = []
    paused = True  # whether the latest step has its pause
    for i, tok in enumerate(tokens, 1):
        where = f"steps: token {i} {tok!r}"
        if not tok:
            raise StepsError(f"steps: token {i} is empty (a stray comma?)")
        words = tok.split()
        if words[0].lower() == "pause":
            if not steps:
                raise StepsError(f"{where}: a pause needs a weight step before it")
            if paused:
                raise StepsError(f"{where}: step {len(steps)} already has a pause")
            if len(words) > 2:
                raise StepsError(f"{where}: expected 'pause' or 'pause DURATION'")
            if len(words) == 2:
                try:
                    steps[-1].pause_ms = _pause_ms(words[1])
                except StepsError as exc:
                    raise StepsError(f"{where}: {exc}") from None
            paused = True
            continue
        m = _WEIGHT.match(tok)
        if m is None:
            raise StepsError(f"{where}: expected a weight like 10% or 'pause [DURATION]'")
        weight = int(m.group(1))
        if weight > 100:
            raise StepsError(f"{where}: weight must be 0..100 percent")
        if steps and not paused:
            raise StepsError(
                f"{where}: step {len(steps)} ({steps[-1].weight}%) needs a pause before the "
                "next weight: 'pause 30s', or 'pause' to wait for a manual promote")
        if steps and weight <= steps[-1].weight:
            raise StepsError(f"{where}: weights must increase (previous {steps[-1].weight}%)")
        steps.append(resources_pb2.CanaryStep(weight=weight))
        paused = False
    return steps
