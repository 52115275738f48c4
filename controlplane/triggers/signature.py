"""Which signed trigger calls are accepted: the HMAC rules, pure (no clock, no I/O).

Two forms are accepted, so that both a GitHub webhook (unmodified) and a CI job with curl and
openssl can call a trigger:

- **GitHub's**: ``X-Hub-Signature-256: sha256=<hex HMAC-SHA256(secret, raw body)>`` and the
  delivery id in ``X-GitHub-Delivery``. GitHub signs no timestamp, so its only defence against a
  replay is the delivery id, which the caller (``controlplane.triggers.deliveries``) keeps.
- **ccs's own**: ``X-CCS-Signature: sha256=<hex HMAC-SHA256(secret, "<timestamp>." + body)>``,
  ``X-CCS-Timestamp`` (Unix seconds) and ``X-CCS-Delivery``. The timestamp is signed, so a
  captured call is refused once it is more than :data:`MAX_AGE` old (or that far in the
  future), as Stripe and Slack do; within that window the delivery id refuses it.

The signature is compared with :func:`hmac.compare_digest` (constant time): a byte-by-byte
compare that stops at the first difference tells an attacker, by its timing, how many leading
bytes of a forged signature are right. Every refusal says why in words that never include the
secret or the expected signature.
"""

from __future__ import annotations

import hashlib
import hmac
import re
from collections.abc import Mapping
from dataclasses import dataclass

#: How old (or how far in the future) a ccs-signed call's timestamp may be, in seconds.
MAX_AGE = 300.0
#: A delivery id is 1-128 printable characters (a GitHub delivery is a UUID).
DELIVERY = re.compile(r"[A-Za-z0-9._:-]{1,128}")
GITHUB_SIGNATURE = "x-hub-signature-256"
GITHUB_DELIVERY = "x-github-delivery"
CCS_SIGNATURE = "x-ccs-signature"
CCS_TIMESTAMP = "x-ccs-timestamp"
CCS_DELIVERY = "x-ccs-delivery"
PREFIX = "sha256="


class SignatureError(Exception):
    """The call is not signed as a trigger call must be: answered 401, nothing changes."""


@dataclass(frozen=True)
class Verified:
    form: str          # "github" or "ccs"
    delivery: str      # the delivery id (the replay key)


def hmac_hex(secret: bytes, message: bytes) -> str:
    return hmac.new(secret, message, hashlib.sha256).hexdigest()


def github_signature(secret: bytes, body: bytes) -> str:
    """``X-Hub-Signature-256`` of ``body``, as GitHub sends it."""
    return PREFIX + hmac_hex(secret, body)


def ccs_signature(secret: bytes, timestamp: str, body: bytes) -> str:
    """``X-CCS-Signature`` of ``body`` sent at ``timestamp`` (the header's text, as sent)."""
    return PREFIX + hmac_hex(secret, timestamp.encode() + b"." + body)


def _same(given: str, expected: str) -> bool:
    return hmac.compare_digest(given.strip().encode(), expected.encode())


def _delivery(headers: Mapping[str, str], name: str) -> str:
    value = headers.get(name, "")
    if not value:
        raise SignatureError(f"{name}: missing (the delivery id; a repeated one is refused as a replay)")
    if not DELIVERY.fullmatch(value):
        raise SignatureError(f"{name}: must be 1-128 characters of letters, digits and . _ : -")
    return value


def verify(headers: Mapping[str, str], body: bytes, secret: bytes, now: float) -> Verified:
    """Check a call's signature; ``headers`` with lower-case names, ``now`` in Unix seconds.

    Raises :class:`SignatureError` saying why (which header is missing or wrong).
    """
    if CCS_SIGNATURE in headers:
        stamp = headers.get(CCS_TIMESTAMP, "")
        if not stamp:
            raise SignatureError(f"{CCS_TIMESTAMP}: missing (Unix seconds, signed with the body)")
        try:
            at = float(stamp)
        except ValueError:
            raise SignatureError(f"{CCS_TIMESTAMP}: {stamp[:40]!r} is not Unix seconds") from None
        if not at == at or abs(now - at) > MAX_AGE:  # NaN is neither old nor new: refused
            raise SignatureError(f"{CCS_TIMESTAMP}: more than {MAX_AGE:.0f} seconds from the server's clock "
                                 "(too old, or in the future)")
        if not _same(headers[CCS_SIGNATURE], ccs_signature(secret, stamp, body)):
            raise SignatureError(f"{CCS_SIGNATURE}: does not match (HMAC-SHA256 of '<timestamp>.<body>' "
                                 "with the trigger's secret)")
        return Verified("ccs", _delivery(headers, CCS_DELIVERY))
    if GITHUB_SIGNATURE in headers:
        if not _same(headers[GITHUB_SIGNATURE], github_signature(secret, body)):
            raise SignatureError(f"{GITHUB_SIGNATURE}: does not match (HMAC-SHA256 of the body with the "
                                 "trigger's secret)")
        return Verified("github", _delivery(headers, GITHUB_DELIVERY))
    raise SignatureError(f"unsigned: send {CCS_SIGNATURE} with {CCS_TIMESTAMP} and {CCS_DELIVERY}, "
                         f"or {GITHUB_SIGNATURE} with {GITHUB_DELIVERY}")
