"""The one exception tree of the SDK, and the one place gRPC status codes become exceptions.

Why a tree and not ``grpc.RpcError``: callers should not need to know the transport to handle
"not found" or "stale resource_version", and the CLI maps classes (not codes) to exit codes.
Every exception carries the gRPC ``code`` and the server's message unchanged; the server's
messages name the field path for ``InvalidArgument``, so they are shown as they come.

``temporary`` tells a caller whether retrying the same request later can succeed (the kopf
idea of errors that carry their retry policy): only ``Unavailable``, ``DeadlineExceeded`` and
``RateLimited``.
"""

from __future__ import annotations

import grpc

__all__ = [
    "AlreadyExists",
    "CcsError",
    "Conflict",
    "DataLoss",
    "DeadlineExceeded",
    "DeployFailed",
    "EtcdUnavailable",
    "FailedPrecondition",
    "Internal",
    "InvalidArgument",
    "MessageTooLarge",
    "NotFound",
    "OutOfRange",
    "PermissionDenied",
    "RateLimited",
    "ReleaseFailed",
    "ResourceExhausted",
    "Unauthenticated",
    "Unavailable",
    "WaitTimeout",
    "from_rpc_error",
]


class CcsError(Exception):
    """Base of every error an SDK call raises; also raised as-is for codes with no subclass."""

    temporary: bool = False

    def __init__(self, message: str, code: grpc.StatusCode | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.code = code if code is not None else _code_of(type(self))

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


class EtcdUnavailable(Unavailable):
    """The server answered, but its etcd (the cluster's state) is not reachable; retry later.

    Told apart from an unreachable server by the ``ccs-reason: etcd-unavailable`` trailing
    metadata the server attaches (a field, not a message prefix the two sides must agree on).
    """


class DeadlineExceeded(CcsError):
    """No answer within the call's timeout; the call may or may not have taken effect."""

    temporary = True


class OutOfRange(CcsError):
    """A watch asked for a revision etcd has compacted: re-list, then watch from the list's
    revision + 1."""


class DataLoss(CcsError):
    """A stored record does not decode (damaged bytes in etcd); the message names every key.

    Not temporary: the same read fails until an operator rewrites or deletes the record
    (deleting its application works whatever the record holds).
    """


class ResourceExhausted(CcsError):
    """``RESOURCE_EXHAUSTED``: a limit refused the call. gRPC uses the one code both for its own
    message size limit and for a server's rate limits, so the server names its reason in the
    ``ccs-reason`` trailer (:data:`REASON_RATE_LIMITED`) and the SDK raises the subclass that says
    which: :class:`RateLimited` with that reason, :class:`MessageTooLarge` without one (gRPC's
    own refusals carry no ccs reason)."""


class MessageTooLarge(ResourceExhausted):
    """A request or an answer past gRPC's message size limit (``RESOURCE_EXHAUSTED`` without a
    ccs reason); the limits and the reasons for them are in :mod:`ccs.message_size`."""


class RateLimited(ResourceExhausted):
    """The server refused the call for a rate limit (``RESOURCE_EXHAUSTED`` with the reason
    ``rate-limited``), e.g. more than a trigger's calls a second. Temporary: the same call
    succeeds later; ``retry_after`` is the server's estimate in seconds (0: none given), from
    the ``ccs-retry-after`` trailer."""

    temporary = True

    def __init__(self, message: str, code: grpc.StatusCode | None = None, retry_after: float = 0.0) -> None:
        super().__init__(message, code)
        self.retry_after = retry_after


class Internal(CcsError):
    """A server bug or an unexpected server-side failure."""


class DeployFailed(CcsError):
    """``applications.wait``: the deploy cannot succeed without a change (image not found, crash
    loop, no node fits). Raised by the SDK itself, never mapped from a gRPC code.

    ``service`` is the service at fault ("" when it is the application, e.g. it was stopped),
    ``reason`` the cause as the control plane or agent wrote it, ``exit_code`` the container's
    last exit code when there is one.
    """

    def __init__(self, service: str, reason: str, exit_code: int | None = None) -> None:
        super().__init__(f"service {service}: {reason}" if service else reason,
                         grpc.StatusCode.FAILED_PRECONDITION)
        self.service = service
        self.reason = reason
        self.exit_code = exit_code


class WaitTimeout(CcsError):
    """``applications.wait`` ran out of time; ``pending`` maps each service that was not ready
    to its status message. The deploy goes on: waiting again may succeed."""

    temporary = True

    def __init__(self, message: str, pending: dict[str, str] | None = None) -> None:
        super().__init__(message, grpc.StatusCode.DEADLINE_EXCEEDED)
        self.pending = dict(pending or {})


class ReleaseFailed(CcsError):
    """``releases.wait``: the release ended without succeeding. Raised by the SDK itself,
    never mapped from a gRPC code.

    ``phase`` is the terminal phase as ``ccs release get`` shows it (``rolled-back``,
    ``failed`` or ``superseded``), ``message`` the control plane's reason, ``release`` the
    final ``ccs.v1.resources_pb2.Release`` (None only when built by hand).
    """

    def __init__(self, phase: str, message: str, release: object | None = None) -> None:
        super().__init__(f"release {phase}: {message}", grpc.StatusCode.ABORTED)
        self.phase = phase
        self.message = message
        self.release = release


#: Trailing metadata key of the server's machine-readable reason for an error, and its values.
REASON_KEY = "ccs-reason"
REASON_ETCD_UNAVAILABLE = "etcd-unavailable"
#: A node certificate that ``ccs node revoke`` or ``ccs node rm`` revoked: the agent stops
#: rather than registering again (see nodeagent.node_tls).
REASON_CERT_REVOKED = "node-certificate-revoked"
#: A rate limit refused the call (with RESOURCE_EXHAUSTED); ``RETRY_AFTER_KEY`` carries the
#: seconds to wait, as a decimal number.
REASON_RATE_LIMITED = "rate-limited"
RETRY_AFTER_KEY = "ccs-retry-after"

_BY_REASON: dict[str, type[CcsError]] = {REASON_ETCD_UNAVAILABLE: EtcdUnavailable, REASON_RATE_LIMITED: RateLimited}

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
    grpc.StatusCode.DATA_LOSS: DataLoss,
    grpc.StatusCode.INTERNAL: Internal,
    grpc.StatusCode.RESOURCE_EXHAUSTED: ResourceExhausted,
}


def _code_of(cls: type[CcsError]) -> grpc.StatusCode:
    """The code a class stands for, so an error the SDK raises itself (a bad argument checked
    before sending) carries the code the server would have answered with."""
    for base in cls.__mro__:
        for code, mapped in _BY_CODE.items():
            if mapped is base:
                return code
    return grpc.StatusCode.UNKNOWN


def from_rpc_error(error: grpc.RpcError) -> CcsError:
    """Translate a gRPC error into the SDK's exception; the only place codes are interpreted."""
    code = error.code() if hasattr(error, "code") else grpc.StatusCode.UNKNOWN
    if not isinstance(code, grpc.StatusCode):
        code = grpc.StatusCode.UNKNOWN
    details = error.details() if hasattr(error, "details") else None
    message = details or code.name.lower().replace("_", " ")
    cls = _BY_CODE.get(code, CcsError)
    reason = _reason(error)
    if reason in _BY_REASON and issubclass(_BY_REASON[reason], cls):
        cls = _BY_REASON[reason]
    if cls is RateLimited:
        retry = _retry_after(error)
        if retry > 0 and "retry" not in message:
            message += f"; retry in {retry:.1f}s"
        return RateLimited(message, code, retry)
    if cls is ResourceExhausted:  # no ccs reason: gRPC's own size limit ("... larger than max (N vs. M)")
        cls = MessageTooLarge
        message += "; ccs requests are at most 4 MiB and answers at most 64 MiB (ccs.message_size)"
    return cls(message, code)


def reason_of(error: grpc.RpcError) -> str:
    """The server's machine-readable reason for ``error`` (``REASON_*``), or ""."""
    return _reason(error)


def _retry_after(error: grpc.RpcError) -> float:
    """The ``ccs-retry-after`` trailer in seconds, or 0."""
    try:
        return max(0.0, float(_trailer(error, RETRY_AFTER_KEY) or 0))
    except ValueError:
        return 0.0


def _reason(error: grpc.RpcError) -> str:
    """The ``ccs-reason`` trailing metadata value, or ""."""
    return _trailer(error, REASON_KEY)


def _trailer(error: grpc.RpcError, name: str) -> str:
    """A trailing metadata value of ``error``, or ""."""
    trailing = getattr(error, "trailing_metadata", None)
    try:
        pairs = trailing() if callable(trailing) else None
    except Exception:  # a call that never reached the server has none
        return ""
    for key, value in pairs or ():
        if key == name:
            return value.decode() if isinstance(value, bytes) else str(value)
    return ""
