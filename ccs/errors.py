"""The one exception tree of the SDK, and the one place gRPC status codes become exceptions.

Why a tree and not ``grpc.RpcError``: callers should not need to know the transport to handle
"not found" or "stale resource_version", and the CLI maps classes (not codes) to exit codes.
Every exception carries the gRPC ``code`` and the server's message unchanged; the server's
messages name the field path for ``InvalidArgument``, so they are shown as they come.

``temporary`` tells a caller whether retrying the same request later can succeed (the kopf
idea of errors that carry their retry policy): only ``Unavailable`` and ``DeadlineExceeded``.
"""

from __future__ import annotations

import grpc

__all__ = [
    "AlreadyExists",
    "CcsError",
    "Conflict",
    "DeadlineExceeded",
    "FailedPrecondition",
    "Internal",
    "InvalidArgument",
    "NotFound",
    "OutOfRange",
    "PermissionDenied",
    "Unauthenticated",
    "Unavailable",
    "from_rpc_error",
]


class CcsError(Exception):
    """Base of every error an SDK call raises; also raised as-is for codes with no subclass."""

    temporary: bool = False

    def __init__(self, message: str, code: grpc.StatusCode = grpc.StatusCode.UNKNOWN) -> None:
        super().__init__(message)
        self.message = message
        self.code = code

    def __repr__(self) -> str:
        return f"{type(self).__name__}(code={self.code.name}, message={self.message!r})"


class NotFound(CcsError):
    """The named resource (or its parent) does not exist."""


class AlreadyExists(CcsError):
    """A resource with that name already exists under the same parent."""


class InvalidArgument(CcsError):
    """The request or the template is invalid; the message names the field path and why."""


class Conflict(CcsError):
    """ABORTED: the resource changed since the ``resource_version`` sent; re-read and retry."""


class FailedPrecondition(CcsError):
    """The system is not in a state that allows the call (e.g. deleting a non-empty cluster)."""


class Unauthenticated(CcsError):
    """The bearer token is missing or wrong."""


class PermissionDenied(CcsError):
    """The token is valid but may not do this."""


class Unavailable(CcsError):
    """The server cannot be reached or is shutting down; the call may be retried."""

    temporary = True


class DeadlineExceeded(CcsError):
    """No answer within the call's timeout; the call may or may not have taken effect."""

    temporary = True


class OutOfRange(CcsError):
    """A watch asked for a revision etcd has compacted: re-list, then watch from the list's
    revision + 1."""


class Internal(CcsError):
    """A server bug or an unexpected server-side failure."""


_BY_CODE: dict[grpc.StatusCode, type[CcsError]] = {
    grpc.StatusCode.NOT_FOUND: NotFound,
    grpc.StatusCode.ALREADY_EXISTS: AlreadyExists,
    grpc.StatusCode.INVALID_ARGUMENT: InvalidArgument,
    grpc.StatusCode.ABORTED: Conflict,
    grpc.StatusCode.FAILED_PRECONDITION: FailedPrecondition,
    grpc.StatusCode.UNAUTHENTICATED: Unauthenticated,
    grpc.StatusCode.PERMISSION_DENIED: PermissionDenied,
    grpc.StatusCode.UNAVAILABLE: Unavailable,
    grpc.StatusCode.DEADLINE_EXCEEDED: DeadlineExceeded,
    grpc.StatusCode.OUT_OF_RANGE: OutOfRange,
    grpc.StatusCode.INTERNAL: Internal,
}


def from_rpc_error(error: grpc.RpcError) -> CcsError:
    """Translate a gRPC error into the SDK's exception; the only place codes are interpreted."""
    code = error.code() if hasattr(error, "code") else grpc.StatusCode.UNKNOWN
    if not isinstance(code, grpc.StatusCode):
        code = grpc.StatusCode.UNKNOWN
    details = error.details() if hasattr(error, "details") else None
    message = details or code.name.lower().replace("_", " ")
    return _BY_CODE.get(code, CcsError)(message, code)
