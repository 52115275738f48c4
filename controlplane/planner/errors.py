"""The one error type of the planners.

A ``PlanError`` means the *input* is wrong (a spec field outside its domain, a label the control plane
could not have written). Retrying with the same input gives the same error, so reconcilers should treat
it as permanent and surface its message on the object instead of requeueing with backoff.
"""

from __future__ import annotations


class PlanError(ValueError):
    """The desired or observed state handed to a planner is invalid.

    The message always names the offending field and says why, e.g.
    ``service web: spec.restart_policy.condition 'sometimes' is not one of none, on-failure, any``.
    """
