"""The pure parts of the secrets store: the AES-GCM envelope, digests and ``NAME@N`` names."""

from __future__ import annotations

import hashlib

import pytest

from ccs.secret_names import name_problem, split_ref
from controlplane.secrets.envelope import KEY_BYTES, EnvelopeError, digest, open_sealed, same_value, seal

KEY = b"k" * KEY_BYTES
WHERE = "/ccs/secrets/c/secret/db/0000000001"


def test_a_sealed_value_opens_under_its_key_and_place_only() -> None:
    sealed = seal(KEY, b"hunter2", WHERE)
    assert b"hunter2" not in sealed
    assert open_sealed(KEY, sealed, WHERE) == b"hunter2"
    assert seal(KEY, b"hunter2", WHERE) != sealed  # a fresh nonce every time
    with pytest.raises(EnvelopeError, match="does not decrypt"):
        open_sealed(b"x" * KEY_BYTES, sealed, WHERE)  # another data key
    with pytest.raises(EnvelopeError, match="does not decrypt"):
        open_sealed(KEY, sealed, WHERE.replace("0001", "0002"))  # moved to another version's key
    tampered = sealed[:-1] + bytes([sealed[-1] ^ 1])
    with pytest.raises(EnvelopeError) as info:
        open_sealed(KEY, tampered, WHERE)
    assert "hunter2" not in str(info.value)
    with pytest.raises(EnvelopeError, match="too short"):
        open_sealed(KEY, b"short", WHERE)


def test_digest_names_the_value_without_holding_it_or_testing_a_guess() -> None:
    """Keyed: without the key, a reader cannot check a guess (the plain SHA-256 of a weak value
    is not what it is shown); the same value under the same key has the same digest."""
    plain = hashlib.sha256(b"a").hexdigest()
    shown = digest(KEY, b"a")
    assert shown.startswith("hmac-sha256:") and plain not in shown
    assert shown == digest(KEY, b"a") != digest(b"o" * KEY_BYTES, b"a")
    assert same_value(KEY, shown, b"a") and not same_value(KEY, shown, b"b")
    # A version stored before digests were keyed still matches its value (no new version).
    assert same_value(KEY, "sha256:" + plain, b"a") and not same_value(KEY, "sha256:" + plain, b"b")


@pytest.mark.parametrize(("ref", "expected"), [
    ("db", ("db", None)), ("db@3", ("db", 3)), ("a.b_c-1", ("a.b_c-1", None)), ("x@1234567890", ("x", 1234567890)),
])
def test_names_and_pins(ref: str, expected: tuple[str, int | None]) -> None:
    assert split_ref(ref) == expected


@pytest.mark.parametrize(("ref", "why"), [
    ("", "not a valid name"), ("-db", "not a valid name"), ("a/b", "not a valid name"), ("db\n", "not a valid name"),
    ("db@", "positive number"), ("db@0", "positive number"), ("db@03", "positive number"), ("db@x", "positive number"),
    ("db@12345678901", "positive number"), ("a" * 64, "not a valid name"),
])
def test_bad_names_say_why(ref: str, why: str) -> None:
    with pytest.raises(ValueError, match=why):
        split_ref(ref)
    if "@" not in ref:
        assert name_problem(ref) is not None
