"""The ccs Python SDK: a typed client for the ccs control plane's gRPC API.

Layers, from the bottom (the temporal/httpx shape, without their duplicated sync classes):

- ``ccs.v1``: generated protobuf and gRPC code, never edited by hand. Methods return these
  messages, so results are typed by the generated ``.pyi`` files.
- ``ccs._transport``: stubs, the bearer token, timeouts, paging, and the one boundary where
  gRPC status codes become the exception tree of ``ccs.errors``.
- ``ccs.clusters`` / ``ccs.applications`` / ``ccs.events`` / ``ccs.access`` (tokens and the
  audit log): one small class per resource kind with the same verbs (create/get/list/update/
  delete), plus ``watch``.
- ``ccs.client``: ``AsyncClient`` (the core, ``async with``) and ``Client``, a thin blocking
  wrapper that runs the core on a private loop in a background thread.
- ``ccs.config`` (contexts, like kubeconfig) and ``ccs.template`` (gathering a Compose file,
  its ``.env`` and env_files) do no network I/O and import no grpc.
- ``ccs.models`` (canary options, step syntax, release phases) and ``ccs.durations`` (the one
  duration syntax of the CLI, SDK and Compose) are pure.
- ``ccs.testing``: an in-process fake API server for tests of code that uses the SDK.

The package ships ``py.typed``: type checkers use these annotations, including the blocking
``Client``'s (its methods have the async core's signatures, see ``ccs._sync``).

Names are exported lazily so that ``import ccs.config`` (which the server does on first
start) does not import grpc or the client.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ccs._transport import Listing
    from ccs.access import NewToken
    from ccs.apply_outcome import ApplyResult
    from ccs.client import AsyncClient, Client
    from ccs.config import ClientConfig, ConfigError, Context, load_config, save_config
    from ccs.errors import (
        AlreadyExists,
        CcsError,
        Conflict,
        DataLoss,
        DeadlineExceeded,
        DeployFailed,
        EtcdUnavailable,
        FailedPrecondition,
        Internal,
        InvalidArgument,
        NotFound,
        OutOfRange,
        PermissionDenied,
        RateLimited,
        ReleaseFailed,
        Unauthenticated,
        Unavailable,
        WaitTimeout,
    )
    from ccs.models import CanaryOptions, StepsError, parse_steps
    from ccs.template import TemplateError, load_bundle

_EXPORTS: dict[str, str] = {
    "AsyncClient": "ccs.client",
    "Client": "ccs.client",
    "Listing": "ccs._transport",
    "NewToken": "ccs.access",
    "ClientConfig": "ccs.config",
    "ConfigError": "ccs.config",
    "Context": "ccs.config",
    "load_config": "ccs.config",
    "save_config": "ccs.config",
    "TemplateError": "ccs.template",
    "load_bundle": "ccs.template",
    "ApplyResult": "ccs.apply_outcome",
    "CanaryOptions": "ccs.models",
    "StepsError": "ccs.models",
    "parse_steps": "ccs.models",
    **{
        name: "ccs.errors"
        for name in (
            "AlreadyExists", "CcsError", "Conflict", "DataLoss", "DeadlineExceeded", "DeployFailed",
            "EtcdUnavailable", "FailedPrecondition", "Internal", "InvalidArgument", "NotFound",
            "OutOfRange", "PermissionDenied", "RateLimited", "ReleaseFailed", "Unauthenticated", "Unavailable",
            "WaitTimeout",
        )
    },
}

__all__ = [
    "AlreadyExists",
    "ApplyResult",
    "AsyncClient",
    "CanaryOptions",
    "CcsError",
    "Client",
    "ClientConfig",
    "ConfigError",
    "Conflict",
    "Context",
    "DataLoss",
    "DeadlineExceeded",
    "DeployFailed",
    "EtcdUnavailable",
    "FailedPrecondition",
    "Internal",
    "InvalidArgument",
    "Listing",
    "NewToken",
    "NotFound",
    "OutOfRange",
    "PermissionDenied",
    "RateLimited",
    "ReleaseFailed",
    "StepsError",
    "TemplateError",
    "Unauthenticated",
    "Unavailable",
    "WaitTimeout",
    "load_bundle",
    "load_config",
    "parse_steps",
    "save_config",
]


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'ccs' has no attribute {name!r}")
    return getattr(importlib.import_module(module), name)


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_EXPORTS))
