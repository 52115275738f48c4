"""The master key: the one secret every API server is given, and what it wraps.

The cluster CA's private key lives in etcd, so that every API replica can sign node
certificates, and none of them holds state of its own. (The secrets store wraps its data keys
the same way, with the key of ``--secrets-key-file`` and these functions: controlplane.secrets.) In etcd
they are wrapped (AES-256-GCM) by the master key, which is never written to etcd: an etcd
backup or a snooped etcd connection alone yields neither key.

- The file (``--master-key-file``, default ``STATE/master.key``) holds 32 random bytes in
  base64 on one line, mode 0600. The first server of a control plane generates it; every
  other server must be given a copy (the same way one distributes any server secret).
- Each wrapped value is ``nonce (12 bytes) || ciphertext+tag``, with the etcd key it is stored
  under as associated data, so a wrapped value moved to another key does not decrypt.
- ``key_id``: a short hash of the master key stored beside every wrapped value, so a server
  with the wrong key file says which key it would need instead of "decryption failed".

Why AES-GCM from ``cryptography``: authenticated encryption (a tampered value is refused, not
decrypted to garbage) from the maintained library the rest of the PKI uses.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import os
import secrets
import stat
from pathlib import Path

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

KEY_BYTES = 32
NONCE_BYTES = 12
TAG_BYTES = 16


class MasterKeyError(Exception):
    """The master key file is missing, unreadable, malformed, or not the one etcd's keys need."""


def key_id(master: bytes) -> str:
    return hashlib.sha256(b"ccs master key id\0" + master).hexdigest()[:16]


def read_master_key(path: Path, what: str = "master key") -> bytes:
    """The key in ``path``; MasterKeyError naming the file and the problem. ``what`` names the
    key in messages (the secrets key file has the same format)."""
    try:
        st = path.stat()
        text = path.read_text(encoding="ascii").strip()
    except FileNotFoundError:
        raise MasterKeyError(f"{path}: no such {what} file") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise MasterKeyError(f"{path}: cannot read the {what}: {exc}") from None
    if st.st_mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise MasterKeyError(f"{path}: the {what} file is readable by others (mode "
                             f"{stat.S_IMODE(st.st_mode):04o}); chmod 600 it")
    try:
        key = base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        raise MasterKeyError(f"{path}: not base64 (a {what} file holds 32 bytes in base64)") from None
    if len(key) != KEY_BYTES:
        raise MasterKeyError(f"{path}: the key is {len(key)} bytes; a {what} is {KEY_BYTES}")
    return key


def create_master_key(path: Path, what: str = "master key") -> bytes:
    """Generate a key and write it to ``path`` (mode 0600, created exclusively: an existing
    file is never overwritten)."""
    key = secrets.token_bytes(KEY_BYTES)
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        raise MasterKeyError(f"{path}: already exists; not overwriting a {what}") from None
    with os.fdopen(fd, "w", encoding="ascii") as out:
        out.write(base64.b64encode(key).decode() + "\n")
        out.flush()
        os.fsync(out.fileno())
    return key


def wrap(master: bytes, plaintext: bytes, where: str) -> bytes:
    """``nonce || ciphertext+tag`` under ``master``, with ``where`` (the etcd key) as associated
    data. The one AEAD of the control plane: the secrets store seals values with it too."""
    nonce = secrets.token_bytes(NONCE_BYTES)
    return nonce + AESGCM(master).encrypt(nonce, plaintext, where.encode())


def opened(key: bytes, wrapped: bytes, where: str) -> bytes | None:
    """The plaintext of a :func:`wrap` result; None when it is too short or does not
    authenticate under ``key`` and ``where`` (wrong key, altered, or moved). Callers raise
    their own error, naming their key."""
    if len(wrapped) < NONCE_BYTES + TAG_BYTES:
        return None
    try:
        return AESGCM(key).decrypt(wrapped[:NONCE_BYTES], wrapped[NONCE_BYTES:], where.encode())
    except InvalidTag:
        return None


def unwrap(master: bytes, wrapped: bytes, where: str, what: str = "master key") -> bytes:
    """The plaintext; MasterKeyError if the key is wrong or the value was altered or moved.
    ``what`` names the key in messages (the secrets key wraps data keys the same way)."""
    if len(wrapped) < NONCE_BYTES + TAG_BYTES:
        raise MasterKeyError(f"{where}: the wrapped value is too short")
    plaintext = opened(master, wrapped, where)
    if plaintext is None:
        raise MasterKeyError(f"{where}: does not decrypt with this {what} (wrong key, or the "
                             "value was altered)")
    return plaintext
