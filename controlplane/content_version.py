"""The version of a table the control plane pushes to agents: a hash of its content.

The routing table and every node's network map are pure functions of the records in etcd, so
any API server computes the same message; hashing its deterministic encoding gives the same
version everywhere without storing a counter, and an unchanged table keeps its version, which
is how the dispatcher knows not to send it again. One definition, so that the routing table
and the network map cannot drift apart in how they say "same content".
"""

from __future__ import annotations

import hashlib

from google.protobuf.message import Message


def content_version(message: Message, field: str = "version") -> int:
    """The first 63 bits of a SHA-256 of ``message`` encoded deterministically with ``field``
    cleared (a message's version must not hash itself); never 0, which means "unset"."""
    if getattr(message, field):
        copy = type(message)()
        copy.CopyFrom(message)
        copy.ClearField(field)
        message = copy
    return encoded_version(message.SerializeToString(deterministic=True))


def encoded_version(encoded: bytes) -> int:
    """``content_version`` of the message whose deterministic encoding (version unset) is
    ``encoded``: for callers that build the encoding from cached parts, as the wire format
    allows (a message's encoding is the concatenation of its fields' encodings)."""
    digest = hashlib.sha256(encoded).digest()
    return int.from_bytes(digest[:8], "big") & 0x7FFF_FFFF_FFFF_FFFF or 1
