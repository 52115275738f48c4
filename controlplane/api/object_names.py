"""Service and container names in requests: the outer bound, checked before any key is built."""

from __future__ import annotations

import re

from controlplane.grpc_errors import InvalidArgument
from controlplane.names import shown

SERVICE_NAME = re.compile(r"[A-Za-z0-9._-]{1,63}")  # the Compose schema's service-name pattern


def check_service_name(field: str, value: str) -> str:
    # The parser vets the names it accepts (DNS labels today); this is the outer bound, as
    # Compose writes it: no slash, space, control character or NUL to end up in an etcd key.
    if not SERVICE_NAME.fullmatch(value):
        raise InvalidArgument(field, f"{shown(value)} is not a valid service name")
    return value


CONTAINER_NAME = re.compile(r"[A-Za-z0-9._-]{1,128}")  # "<service>-<slot>-<id>"


def check_container_name(field: str, value: str) -> str:
    if not CONTAINER_NAME.fullmatch(value):
        raise InvalidArgument(field, f"{shown(value)} is not a container name (like web-1-3f9a2b7c)")
    return value
