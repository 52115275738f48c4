"""The kind of a Docker API error, for the agent's ``ccs_agent_docker_errors_total{kind}``.

A fixed set (``not_found``, ``conflict``, ``refused``, ``server_error``, ``unreachable``), read
from the docker SDK's exception before :func:`~nodeagent.runtime.docker_engine.engine_error` maps
it: the status code says more than the runtime error it becomes (a 409 and a 400 both become a
``RuntimeFailure``).
"""

from __future__ import annotations

import docker.errors

from .types import RuntimeFailure

DOCKER_ERROR_KINDS = ("not_found", "conflict", "refused", "server_error", "unreachable")


def docker_error_kind(exc: BaseException) -> str | None:
    """What kind of Docker API error ``exc`` is (the label of ``ccs_agent_docker_errors_total``), or
    None when it is not one (already a runtime error, or the agent's own)."""
    if isinstance(exc, RuntimeFailure):
        return None
    if isinstance(exc, docker.errors.APIError):
        code = exc.status_code or 0
        if code == 404:
            return "not_found"
        if code == 409:
            return "conflict"
        return "server_error" if code >= 500 else "refused"
    if isinstance(exc, OSError | docker.errors.DockerException):
        return "unreachable"
    return None
