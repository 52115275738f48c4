"""Names, labels and free text: the rules every object's name, labels and text fields obey.

Checked by the API servicers and by the dispatcher (a node registers with a name and
labels), so the rules live below both packages, written once.

The patterns are matched with ``fullmatch``: ``re.match`` with ``$`` also accepts a trailing
newline ("web\\n" was a valid name, and became an etcd key with a newline in it). A refusal
quotes the value it refuses, cut to ``SHOWN`` characters: a message that echoed a 1 MiB value
whole would be larger than the 16 KiB gRPC lets a status message be, and the caller would get
a transport error instead of the reason.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

from controlplane.grpc_errors import InvalidArgument

DNS_LABEL = re.compile(r"[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?")
LABEL_KEY = re.compile(r"[A-Za-z0-9]([A-Za-z0-9._/-]{0,251}[A-Za-z0-9])?")
MAX_LABELS = 64
MAX_LABEL_VALUE = 1024
MAX_DESCRIPTION = 4096  # bytes of a cluster's description
MAX_VERSION = 256  # bytes of an application's version string
SHOWN = 80


def shown(value: str) -> str:
    """``value`` quoted for a message, cut to ``SHOWN`` characters with its length said."""
    if len(value) <= SHOWN:
        return repr(value)
    return f"{value[:SHOWN]!r}... ({len(value)} characters)"


def check_name(field: str, value: str) -> str:
    if not value:
        raise InvalidArgument(field, "is required")
    if not DNS_LABEL.fullmatch(value):
        raise InvalidArgument(
            field,
            f"{shown(value)} is not a valid name: use at most 63 lowercase letters, digits and '-', "
            "starting and ending with a letter or digit",
        )
    return value


def check_text(field: str, value: str, max_bytes: int) -> str:
    """Free text (a description, a version, a label value): bounded, and no NUL byte, which
    no tool that shows or passes it on (a terminal, a C string, an environment) keeps intact."""
    size = len(value.encode())
    if size > max_bytes:
        raise InvalidArgument(field, f"is {size} bytes; the limit is {max_bytes} bytes")
    if "\0" in value:
        raise InvalidArgument(field, f"contains a NUL byte (at character {value.index(chr(0))})")
    return value


def check_labels(field: str, labels: Mapping[str, str]) -> None:
    if len(labels) > MAX_LABELS:
        raise InvalidArgument(field, f"at most {MAX_LABELS} labels, got {len(labels)}")
    for k, v in labels.items():
        if not LABEL_KEY.fullmatch(k):
            raise InvalidArgument(f"{field}[{shown(k)}]", "invalid label key: use at most 253 letters, digits "
                                  "and '._/-', starting and ending with a letter or digit")
        check_text(f"{field}.{k}", v, MAX_LABEL_VALUE)
