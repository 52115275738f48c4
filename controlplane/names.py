"""Names and labels: the rules every object's name and labels obey.

Checked by the API servicers and by the dispatcher (a node registers with a name and
labels), so the rules live below both packages, written once.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

from controlplane.grpc_errors import InvalidArgument

DNS_LABEL = re.compile(r"^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$")
LABEL_KEY = re.compile(r"^[A-Za-z0-9]([A-Za-z0-9._/-]{0,251}[A-Za-z0-9])?$")
MAX_LABELS = 64
MAX_LABEL_VALUE = 1024


def check_name(field: str, value: str) -> str:
    if not value:
        raise InvalidArgument(field, "is required")
    if not DNS_LABEL.match(value):
        raise InvalidArgument(
            field,
            f"{value!r} is not a valid name: use at most 63 lowercase letters, digits and '-', "
            "starting and ending with a letter or digit",
        )
    return value


def check_labels(field: str, labels: Mapping[str, str]) -> None:
    if len(labels) > MAX_LABELS:
        raise InvalidArgument(field, f"at most {MAX_LABELS} labels, got {len(labels)}")
    for k, v in labels.items():
        if not LABEL_KEY.match(k):
            raise InvalidArgument(f"{field}.{k}", "invalid label key")
        if len(v) > MAX_LABEL_VALUE:
            raise InvalidArgument(f"{field}.{k}", f"value longer than {MAX_LABEL_VALUE} bytes")
