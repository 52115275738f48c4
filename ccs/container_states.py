"""Which container states count as ended and which as running: one definition for the SDK's
deploy verdict and the control plane's planners.

A protocol fact of the ``ContainerState`` enum, so it lives in ``ccs`` beside the protos'
users, where the clients may import it, and the control plane imports it from here (the
import-linter contracts let ``controlplane`` import ``ccs``, never the other way round), as
:mod:`ccs.release_phases` does for release phases. Pure: it imports only the generated protos.
"""

from __future__ import annotations

from typing import Final

from ccs.v1 import resources_pb2 as pb

__all__ = ["RUNNING_STATES", "TERMINAL_STATES"]

S = pb.ContainerState
#: The container's process has ended (or the container is gone).
TERMINAL_STATES: Final = frozenset(
    {S.CONTAINER_STATE_EXITED, S.CONTAINER_STATE_FAILED, S.CONTAINER_STATE_STOPPED, S.CONTAINER_STATE_REMOVED}
)
#: The container's process runs, whatever its health.
RUNNING_STATES: Final = frozenset(
    {S.CONTAINER_STATE_RUNNING, S.CONTAINER_STATE_HEALTHY, S.CONTAINER_STATE_UNHEALTHY}
)
