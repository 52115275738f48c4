"""The phases in which a release has ended: the one definition, for the SDK, CLI and server.

A release in one of these phases never changes again: waits stop there, the release reconciler
no longer plans it, and a new update does not supersede it. The set is a fact of the protocol's
``ReleasePhase`` enum, so it lives beside the protos' users in ``ccs`` (which the clients may
import) and the control plane imports it from here (``controlplane.release.TERMINAL``): the
import-linter contracts in ``pyproject.toml`` let ``controlplane`` import ``ccs`` but never the
other way round. Pure: it imports nothing but the generated protos.
"""

from __future__ import annotations

from typing import Final

from ccs.v1 import resources_pb2 as pb

__all__ = ["AWAITING_OPERATOR_PHASES", "TERMINAL_PHASES", "awaits_operator", "is_terminal"]

TERMINAL_PHASES: Final = frozenset({
    pb.RELEASE_PHASE_SUCCEEDED,
    pb.RELEASE_PHASE_ROLLED_BACK,
    pb.RELEASE_PHASE_FAILED,
    pb.RELEASE_PHASE_SUPERSEDED,
})


def is_terminal(phase: int) -> bool:
    """Whether a release in ``phase`` has ended."""
    return phase in TERMINAL_PHASES


#: The phases in which a release has done all it does by itself and stays until an operator
#: acts: a blue-green release whose new side is up waits for ``shift``, ``confirm`` or
#: ``rollback`` (``ccs app update --wait`` ends there, successfully).
AWAITING_OPERATOR_PHASES: Final = frozenset({pb.RELEASE_PHASE_AWAITING_SHIFT})


def awaits_operator(status: pb.ReleaseStatus) -> bool:
    """Whether a release with ``status`` waits for an operator: in such a phase, with no
    operator request pending (the planner has not acted on it yet: a pending ``confirm``
    moves the release on, a pending ``shift`` changes its weight)."""
    return status.phase in AWAITING_OPERATOR_PHASES and not status.requests
