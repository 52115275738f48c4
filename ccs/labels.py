"""The labels ccs reserves on its records, and how a label update applies: one definition for the
control plane, the agent and the SDK.

The ``ccs.`` prefix on ``meta.labels`` is ccs's own. The planners write a container's final
outcome, restart history and unhealthy-replacement history there (so no proto change was
needed), the SDK's deploy verdict reads them, and ``ccs app rm --keep-volumes`` travels as a
label from the application to its containers and on to the agent, which keeps their anonymous
volumes. These are protocol facts
like :mod:`ccs.container_states`, so they live in ``ccs``, which every other package may import
(the import-linter contracts let ``controlplane`` and ``nodeagent`` import ``ccs``, never the
other way round). Pure: no imports beyond the standard library's typing.
"""

from __future__ import annotations

from collections.abc import Mapping, MutableMapping
from typing import Final, Literal

__all__ = [
    "KEEP_VOLUMES",
    "LABEL_HOME_NODE",
    "LABEL_OUTCOME",
    "LABEL_OUTCOME_MESSAGE",
    "LABEL_REPLACES",
    "LABEL_RESTART_COUNT",
    "LABEL_RESTART_FAILURES",
    "LABEL_UNHEALTHY_SINCE",
    "LABEL_UNHEALTHY_STREAK",
    "OUTCOME_COMPLETED",
    "OUTCOME_FAILED",
    "apply_label_changes",
    "keeps_volumes",
]

LABEL_OUTCOME: Final = "ccs.outcome"
"""``completed`` or ``failed``: the planner stopped this container for good (restart policy said so)."""
LABEL_OUTCOME_MESSAGE: Final = "ccs.outcome.message"
"""Human-readable reason for ``ccs.outcome``, e.g. the crash-loop message."""
LABEL_RESTART_FAILURES: Final = "ccs.restart.failures"
"""Comma-separated ISO-8601 times of the slot's earlier failures that led to a restart."""
LABEL_RESTART_COUNT: Final = "ccs.restart.count"
"""How many times this slot was restarted in total (informational, like Docker's RestartCount)."""
LABEL_REPLACES: Final = "ccs.replaces"
"""On a container created to replace an UNHEALTHY one: the id of the container it replaces."""
LABEL_UNHEALTHY_SINCE: Final = "ccs.unhealthy.since"
"""On an UNHEALTHY container retired stop-first: when it turned unhealthy (ISO-8601), so its
replacement, created once it has stopped, carries the slot's history."""
LABEL_UNHEALTHY_STREAK: Final = "ccs.unhealthy.streak"
"""How many unhealthy containers in a row this slot replaced before this one (the backoff's exponent)."""

LABEL_HOME_NODE: Final = "ccs.home-node"
"""The node a container waiting for placement must go to: the restart of a slot whose service
waits for its node (``x-ccs.on_node_loss: wait``, the default with named volumes) stays where
the slot's volumes are. Ignored once that node is removed or draining."""

OUTCOME_COMPLETED: Final[Literal["completed"]] = "completed"
OUTCOME_FAILED: Final[Literal["failed"]] = "failed"

KEEP_VOLUMES: Final = "ccs.keep-volumes"
"""``true`` on an application being removed with ``--keep-volumes``, and on its containers."""


def keeps_volumes(labels: Mapping[str, str]) -> bool:
    """Whether ``labels`` ask to keep the anonymous volumes (``ccs.keep-volumes=true``, any case)."""
    return labels.get(KEEP_VOLUMES, "").lower() == "true"


def apply_label_changes(labels: MutableMapping[str, str], changes: Mapping[str, str]) -> None:
    """Apply the ``labels`` of an update request: a value sets the label, an empty value removes it."""
    for key, value in changes.items():
        if value:
            labels[key] = value
        else:
            labels.pop(key, None)
