"""The version of a table the control plane pushes to agents: a hash of its content.

The routing table and every node's network map are pure functions of the records in etcd, so
any API server computes the same message; hashing its deterministic encoding gives the same
version everywhere without storing a counter, and an unchanged table keeps its version, which
is how the dispatcher knows not to send it again. One definition, so that the routing table
and the network map cannot drift apart in how they say "same content". A network map is
versioned from its networks' own hashes (:func:`combined_version`), so that the dispatcher can
send a node only the networks that changed and still name the whole map's version cheaply.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable

from google.protobuf.message import Message

_MASK64 = (1 << 64) - 1


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


def part_digest(encoded: bytes) -> int:
    """A 64-bit hash of one part of a message made of many (a network of a network map)."""
    return int.from_bytes(hashlib.sha256(encoded).digest()[:8], "big")


def combined_version(head: bytes, digests: Iterable[int]) -> int:
    """The version of a message made of ``head`` and parts whose ``part_digest`` are ``digests``:
    a hash of the head and of the digests' sum (modulo 2**64). The sum does not depend on the
    parts' order, and a sender that keeps each part's digest versions a message of any size
    with one small hash: the network maps' versions are this (issue 15: hashing every node's
    whole map on every flush was O(nodes x cluster)). Never 0."""
    total = 0
    for d in digests:
        total = (total + d) & _MASK64
    return encoded_version(head + total.to_bytes(8, "big"))
