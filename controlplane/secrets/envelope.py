"""The encryption of one stored value: AES-256-GCM, the etcd key as associated data.

A stored value is ``nonce (12 bytes) || ciphertext+tag``. The etcd key it is stored under is
the associated data, so a ciphertext copied to another secret's key (or version) does not
decrypt: a value cannot be moved between names by someone who can write etcd but lacks the
key. Authenticated: a changed byte fails with :class:`EnvelopeError`, never decrypts to garbage.

Why AESGCM from ``cryptography``: the maintained library the PKI already uses, and an AEAD
(the standard one for data at rest; Kubernetes' aesgcm provider, Vault's barrier).
"""

from __future__ import annotations

import hashlib
import secrets

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

KEY_BYTES = 32
NONCE_BYTES = 12
TAG_BYTES = 16


class EnvelopeError(Exception):
    """A stored value does not decrypt (wrong key, or altered or moved). Never holds the value."""


def digest(value: bytes) -> str:
    """What answers show instead of the value."""
    return "sha256:" + hashlib.sha256(value).hexdigest()


def seal(key: bytes, value: bytes, where: str) -> bytes:
    nonce = secrets.token_bytes(NONCE_BYTES)
    return nonce + AESGCM(key).encrypt(nonce, value, where.encode())


def open_sealed(key: bytes, sealed: bytes, where: str) -> bytes:
    if len(sealed) < NONCE_BYTES + TAG_BYTES:
        raise EnvelopeError(f"{where}: the stored value is too short to be a sealed value")
    try:
        return AESGCM(key).decrypt(sealed[:NONCE_BYTES], sealed[NONCE_BYTES:], where.encode())
    except InvalidTag:
        raise EnvelopeError(f"{where}: does not decrypt (wrong data key, or the value was altered "
                            "or moved)") from None
