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

__all__ = ["TERMINAL_PHASES", "is_terminal"]

TERMINAL_PHASES: Final = frozenset({
    pb.RELEASE_PHASE_SUCCEEDED,
    pb.RELEASE_PHASE_ROLLED_BACK,
    pb.RELEASE_PHASE_FAILED,
    pb.RELEASE_PHASE_SUPERSEDED,
})


def is_terminal(phase: int) -> bool:
    """Whether a release in ``phase`` has ended."""
    return phase in TERMINAL_PHASES
