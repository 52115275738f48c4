"""The one place where exceptions become gRPC status codes.

Both servicer packages use it: the API (:mod:`controlplane.api`) and the agents' side
(:mod:`controlplane.dispatcher`). It sits below both so that neither imports the other for it.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable
from typing import Any, TypeVar

import grpc
import structlog

from ccs.errors import REASON_ETCD_UNAVAILABLE, REASON_KEY
from controlplane import store
from controlplane.store.reads import BadPageToken

log = structlog.get_logger("ccs.api")


ETCD_UNAVAILABLE_TRAILER = ((REASON_KEY, REASON_ETCD_UNAVAILABLE),)
# gRPC carries a status message in a trailer. A peer refuses trailers over 16 KiB in all (the
# hard limit), and refuses those between 8 KiB (``grpc.max_metadata_size``, the soft limit) and
# 16 KiB *at random*, with a chance that grows with the size: an 8 KiB message plus the other
# trailers (8,350 bytes) was refused 9 times in 300 with RESOURCE_EXHAUSTED "received metadata
# size exceeds soft limit" instead of its reason (grpcio 1.85; tests/integration/
# test_bad_input_api.py sends one 200 times). Messages are cut to half the soft limit; a
# template's list of errors is the long one.
MAX_MESSAGE_BYTES = 4 * 1024


class InvalidArgument(ValueError):
    """A request field is wrong. The message names the field path."""

    def __init__(self, field: str, problem: str) -> None:
        super().__init__(f"{field}: {problem}")
        self.field = field


class FailedPrecondition(Exception):
    """The request is valid but the system is not in a state that allows it."""


class PermissionDenied(Exception):
    """The request is valid but a policy forbids it (the message names the fields and the
    policy to change), as Kubernetes answers 403 Forbidden for a PodSecurity refusal."""


def _status(exc: BaseException) -> tuple[grpc.StatusCode, str] | None:
    from controlplane.compose import TemplateError  # local: keep the api importable alone

    table: list[tuple[type[BaseException], grpc.StatusCode]] = [
        (store.NotFound, grpc.StatusCode.NOT_FOUND),
        (store.AlreadyExists, grpc.StatusCode.ALREADY_EXISTS),
        (store.Conflict, grpc.StatusCode.ABORTED),
        (store.NotEmpty, grpc.StatusCode.ABORTED),
        (store.Compacted, grpc.StatusCode.OUT_OF_RANGE),
        (store.StoreUnavailable, grpc.StatusCode.UNAVAILABLE),
        # etcd refused a write for its size: the request is at fault, not the connection.
        (store.TooLarge, grpc.StatusCode.INVALID_ARGUMENT),
        # A stored record that does not decode (KEP-3926): the data is damaged, not the
        # request; the message names every key so an operator can rewrite or delete it.
        (store.Corrupt, grpc.StatusCode.DATA_LOSS),
        (InvalidArgument, grpc.StatusCode.INVALID_ARGUMENT),
        (BadPageToken, grpc.StatusCode.INVALID_ARGUMENT),
        (TemplateError, grpc.StatusCode.INVALID_ARGUMENT),
        (FailedPrecondition, grpc.StatusCode.FAILED_PRECONDITION),
        (PermissionDenied, grpc.StatusCode.PERMISSION_DENIED),
    ]
    for cls, code in table:
        if isinstance(exc, cls):
            return code, str(exc)
    return None


def status_of(exc: BaseException) -> tuple[grpc.StatusCode, str] | None:
    """The gRPC code and message ``exc`` maps to; None for an internal error (a bug)."""
    return _status(exc)


#: The HTTP status of each code, for the HTTP routes that call the same write paths (deploy
#: triggers): Google's published mapping (google/rpc/code.proto, as grpc-gateway uses it), with
#: one departure: FAILED_PRECONDITION answers 409, not 400. The request was well formed; the
#: application is in a state that refuses it (being deleted, an image to retag missing), which
#: is what 409 Conflict tells a CI job, as Kubernetes answers it for such refusals.
HTTP_STATUS: dict[grpc.StatusCode, int] = {
    grpc.StatusCode.INVALID_ARGUMENT: 400,
    grpc.StatusCode.OUT_OF_RANGE: 400,
    grpc.StatusCode.FAILED_PRECONDITION: 409,
    grpc.StatusCode.UNAUTHENTICATED: 401,
    grpc.StatusCode.PERMISSION_DENIED: 403,
    grpc.StatusCode.NOT_FOUND: 404,
    grpc.StatusCode.ALREADY_EXISTS: 409,
    grpc.StatusCode.ABORTED: 409,
    grpc.StatusCode.RESOURCE_EXHAUSTED: 429,
    grpc.StatusCode.CANCELLED: 499,
    grpc.StatusCode.UNIMPLEMENTED: 501,
    grpc.StatusCode.UNAVAILABLE: 503,
    grpc.StatusCode.DEADLINE_EXCEEDED: 504,
    grpc.StatusCode.DATA_LOSS: 500,
    grpc.StatusCode.INTERNAL: 500,
    grpc.StatusCode.UNKNOWN: 500,
}


def wire_size(raw: bytes) -> int:
    """Bytes ``raw`` takes in the ``grpc-message`` trailer: gRPC percent-encodes every byte
    outside printable ASCII, and ``%``, as three."""
    return len(raw) + 2 * sum(1 for b in raw if b < 0x20 or b > 0x7E or b == 0x25)


def bounded(message: str, limit: int = MAX_MESSAGE_BYTES) -> str:
    """``message`` cut to at most ``limit`` bytes *on the wire* (``wire_size``: a message of
    non-ASCII text takes three times its UTF-8 length there), saying so when it was cut."""
    raw = message.encode()
    if wire_size(raw) <= limit:
        return message
    budget, end = limit - 64, 0
    for i, b in enumerate(raw):
        budget -= 3 if b < 0x20 or b > 0x7E or b == 0x25 else 1
        if budget < 0:
            break
        end = i + 1
    return raw[:end].decode(errors="ignore") + f" ... ({len(raw)} bytes in all, cut)"


async def _abort(context: grpc.aio.ServicerContext, exc: Exception, method: str) -> None:
    mapped = _status(exc)
    if mapped is None:
        log.exception("unhandled error", method=method)
        await context.abort(grpc.StatusCode.INTERNAL, f"internal error: {type(exc).__name__}")
    else:
        code, message = mapped[0], bounded(mapped[1])
        if code in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DATA_LOSS):
            log.warning("rpc failed", method=method, code=code.name, error=message)
        if isinstance(exc, store.StoreUnavailable):
            # Clients tell "the server is up, its etcd is not" from "no server" by this field.
            await context.abort(code, f"etcd is unavailable: {message}", ETCD_UNAVAILABLE_TRAILER)
        await context.abort(code, message)


F = TypeVar("F", bound=Callable[..., Any])


def _wrap(fn: F) -> F:
    name = fn.__qualname__
    if inspect.isasyncgenfunction(fn):

        @functools.wraps(fn)
        async def stream(self: Any, request: Any, context: grpc.aio.ServicerContext) -> Any:
            try:
                async for item in fn(self, request, context):
                    yield item
            except grpc.aio.AbortError:
                raise
            except Exception as e:
                await _abort(context, e, name)

        return stream  # type: ignore[return-value]

    @functools.wraps(fn)
    async def unary(self: Any, request: Any, context: grpc.aio.ServicerContext) -> Any:
        try:
            return await fn(self, request, context)
        except grpc.aio.AbortError:
            raise
        except Exception as e:
            await _abort(context, e, name)

    return unary  # type: ignore[return-value]


C = TypeVar("C", bound=type)


def map_errors(cls: C) -> C:
    """Class decorator: every RPC method (CamelCase) of a servicer maps its errors."""
    for attr, fn in list(vars(cls).items()):
        if attr[:1].isupper() and callable(fn):
            setattr(cls, attr, _wrap(fn))
    return cls
