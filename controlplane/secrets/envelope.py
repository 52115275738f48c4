"""The encryption of one stored value: AES-256-GCM, the etcd key as associated data.

A stored value is ``nonce (12 bytes) || ciphertext+tag``. The etcd key it is stored under is
the associated data, so a ciphertext copied to another secret's key (or version) does not
decrypt: a value cannot be moved between names by someone who can write etcd but lacks the
key. Authenticated: a changed byte fails with :class:`EnvelopeError`, never decrypts to garbage.

The AEAD is the PKI's key wrapping (:func:`controlplane.pki.keywrap.wrap`, AESGCM from
``cryptography``, the standard for data at rest: Kubernetes' aesgcm provider, Vault's barrier):
one implementation of the format for the CA key, the data keys and the values.
"""

from __future__ import annotations

import hashlib
import hmac

from controlplane.pki.keywrap import KEY_BYTES, NONCE_BYTES, TAG_BYTES, opened, wrap

__all__ = ["KEY_BYTES", "EnvelopeError", "digest", "open_sealed", "same_value", "seal"]


class EnvelopeError(Exception):
    """A stored value does not decrypt (wrong key, or altered or moved). Never holds the value."""


DIGEST_PREFIX = "hmac-sha256:"
LEGACY_PREFIX = "sha256:"


def digest(key: bytes, value: bytes) -> str:
    """What answers show instead of the value: an HMAC-SHA256 under a key only the servers hold
    (:meth:`controlplane.secrets.keyring.Keyring.digest_key`). A plain SHA-256 of the value,
    shown to every reader of the cluster, would let a viewer test guesses of a weak secret
    offline; an HMAC still tells two versions apart and a redeploy of the same value from a new
    one, without being a test of a guess."""
    return DIGEST_PREFIX + hmac.new(key, value, hashlib.sha256).hexdigest()


def same_value(key: bytes, stored_digest: str, value: bytes) -> bool:
    """Whether ``value`` is the one ``stored_digest`` names. Versions stored before digests were
    keyed carry a plain ``sha256:`` one: compared as such, so a redeploy of an unchanged value
    does not make a new version."""
    if stored_digest.startswith(LEGACY_PREFIX):
        return hmac.compare_digest(stored_digest, LEGACY_PREFIX + hashlib.sha256(value).hexdigest())
    return hmac.compare_digest(stored_digest, digest(key, value))


def seal(key: bytes, value: bytes, where: str) -> bytes:
    return wrap(key, value, where)


def open_sealed(key: bytes, sealed: bytes, where: str) -> bytes:
    if len(sealed) < NONCE_BYTES + TAG_BYTES:
        raise EnvelopeError(f"{where}: the stored value is too short to be a sealed value")
    value = opened(key, sealed, where)
    if value is None:
        raise EnvelopeError(f"{where}: does not decrypt (wrong data key, or the value was altered "
                            "or moved)")
    return value
