"""The PKI's pure parts: join token format, fingerprints, certificates from CSRs, key wrapping,
renewal timing. The TLS connections themselves are tested against real servers
(tests/integration/test_tls.py, test_node_certs.py)."""

from __future__ import annotations

import datetime as dt
import os
import stat
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from ccs.join_token import JoinToken, JoinTokenError, parse
from ccs.tls import FingerprintMismatch, ServerChain, normalize_fingerprint, pem_fingerprint, verification_hint
from controlplane.pki import certs, keywrap
from controlplane.pki.cluster_ca import ClusterKeys
from controlplane.pki.node_certs import CertRecord
from controlplane.pki.server_tls import ServerTls, TlsConfigError, load_own
from nodeagent import node_tls
from nodeagent.config import Identity

NOW = dt.datetime(2026, 11, 30, 12, 0, tzinfo=dt.UTC)
FP = "ab" * 32
SECRET = "S" * 40 + "-_x"


# ------------------------------------------------------------------ join tokens

@pytest.mark.parametrize("cluster", ["prod", "a", "my-cluster-2", "2-x"])
def test_join_token_round_trips_with_any_cluster_name(cluster: str) -> None:
    token = JoinToken(cluster, SECRET, FP)
    text = token.render()
    assert text == f"CCSJOIN-2-{FP}-{cluster}-{SECRET}"
    assert parse(text) == token
    assert token.stored() == f"CCSJOIN-{cluster}-{SECRET}"


def test_a_previous_format_token_is_recognised_as_version_1() -> None:
    old = parse(f"CCSJOIN-prod-{SECRET}")
    assert (old.version, old.cluster, old.ca_fingerprint, old.secret) == (1, "prod", "", SECRET)
    assert old.stored() == f"CCSJOIN-prod-{SECRET}"


@pytest.mark.parametrize(("text", "why"), [
    ("SWMTKN-1-abc", "starts with 'CCSJOIN-'"),
    ("CCSJOIN-x", "too short"),
    (f"CCSJOIN-2-{FP}-Bad_Name-{SECRET}", "cluster part"),
    (f"CCSJOIN-prod-{'!' * 43}", "secret part"),
])
def test_malformed_tokens_say_why(text: str, why: str) -> None:
    with pytest.raises(JoinTokenError, match=why):
        parse(text)


# ------------------------------------------------------------------ fingerprints

def test_fingerprints_in_the_forms_operators_copy_them() -> None:
    colons = ":".join(FP[i:i + 2].upper() for i in range(0, 64, 2))
    for text in (FP, FP.upper(), colons, f"sha256:{FP}", f"SHA256 Fingerprint={colons}"):
        assert normalize_fingerprint(text) == FP
    with pytest.raises(ValueError, match="64 hex digits"):
        normalize_fingerprint("abcd")


def test_the_chain_gives_the_pinned_ca_or_refuses() -> None:
    key, ca = certs.new_ca(NOW)
    _, leaf = certs.issue_server(key, ca, ["127.0.0.1"], NOW)
    der = [c.public_bytes(serialization.Encoding.DER) for c in (leaf, ca)]
    chain = ServerChain("h:1", tuple(der))
    pem = chain.ca_pem(certs.fingerprint(ca))
    assert pem_fingerprint(pem) == certs.fingerprint(ca)
    with pytest.raises(FingerprintMismatch, match="does not present the CA"):
        chain.ca_pem("00" * 32)


# ------------------------------------------------------------------ certificates

def test_server_certificate_names_every_name_and_chains_to_the_ca() -> None:
    key, ca = certs.new_ca(NOW)
    _, cert = certs.issue_server(key, ca, ["ccs.example.com", "10.0.0.5", "::1", "10.0.0.5"], NOW)
    sans = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert sans.get_values_for_type(x509.DNSName) == ["ccs.example.com"]
    assert [str(a) for a in sans.get_values_for_type(x509.IPAddress)] == ["10.0.0.5", "::1"]
    cert.verify_directly_issued_by(ca)
    usage = cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert list(usage) == [ExtendedKeyUsageOID.SERVER_AUTH]
    assert ca.extensions.get_extension_for_class(x509.BasicConstraints).value.path_length == 0
    ca_public = ca.public_key()
    assert isinstance(ca_public, ec.EllipticCurvePublicKey) and ca_public.curve.name == "secp256r1"


def test_a_node_certificate_takes_only_the_key_from_the_csr() -> None:
    key, ca = certs.new_ca(NOW)
    _, csr_pem = node_tls.new_key_and_csr("someone-else")  # the CSR asks for another name
    cert = certs.issue_node(key, ca, certs.parse_csr(csr_pem), "prod", "n1", NOW, dt.timedelta(seconds=30))
    ident = certs.node_identity(cert)
    assert (ident.cluster, ident.node, ident.serial) == ("prod", "n1", certs.serial_hex(cert))
    assert cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == "n1"
    assert cert.not_valid_after_utc == NOW + dt.timedelta(seconds=30)
    assert cert.not_valid_before_utc == NOW - dt.timedelta(seconds=30)  # backdated at most its lifetime
    usage = cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert list(usage) == [ExtendedKeyUsageOID.CLIENT_AUTH]
    cert.verify_directly_issued_by(ca)
    _, server = certs.issue_server(key, ca, ["n1"], NOW)
    with pytest.raises(ValueError, match="not a ccs node certificate"):
        certs.node_identity(server)  # a server certificate never passes for a node


def test_csrs_that_are_refused_say_why() -> None:
    with pytest.raises(certs.CsrError, match="not a PEM certificate signing request"):
        certs.parse_csr("hello")
    weak = rsa.generate_private_key(public_exponent=65537, key_size=1024)
    csr = (x509.CertificateSigningRequestBuilder()
           .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "n")]))
           .sign(weak, hashes.SHA256()))
    with pytest.raises(certs.CsrError, match="1024 bits is too short"):
        certs.parse_csr(csr.public_bytes(serialization.Encoding.PEM))
    _, good = node_tls.new_key_and_csr("n")
    body = good.splitlines()
    flipped = body[3][:10] + ("A" if body[3][10] != "A" else "B") + body[3][11:]
    tampered = "\n".join([*body[:3], flipped, *body[4:]])
    with pytest.raises(certs.CsrError):
        certs.parse_csr(tampered)


# ------------------------------------------------------------------ master key and wrapping

def test_master_key_file_is_created_once_with_mode_0600(tmp_path: Path) -> None:
    path = tmp_path / "d" / "master.key"
    key = keywrap.create_master_key(path)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600 and keywrap.read_master_key(path) == key
    with pytest.raises(keywrap.MasterKeyError, match="not overwriting"):
        keywrap.create_master_key(path)
    os.chmod(path, 0o644)
    with pytest.raises(keywrap.MasterKeyError, match="readable by others"):
        keywrap.read_master_key(path)
    os.chmod(path, 0o600)
    path.write_text("not base64!\n")
    with pytest.raises(keywrap.MasterKeyError, match="not base64"):
        keywrap.read_master_key(path)


def test_wrapped_values_open_only_with_their_key_and_at_their_place() -> None:
    master, other = os.urandom(32), os.urandom(32)
    wrapped = keywrap.wrap(master, b"ca key", "/ccs/pki/ca")
    assert b"ca key" not in wrapped
    assert keywrap.unwrap(master, wrapped, "/ccs/pki/ca") == b"ca key"
    with pytest.raises(keywrap.MasterKeyError, match="does not decrypt"):
        keywrap.unwrap(other, wrapped, "/ccs/pki/ca")
    with pytest.raises(keywrap.MasterKeyError, match="does not decrypt"):
        keywrap.unwrap(master, wrapped, "/ccs/pki/secrets-key")  # moved to another key
    assert keywrap.key_id(master) != keywrap.key_id(other)


def test_a_damaged_certificate_record_counts_as_revoked() -> None:
    assert CertRecord.decode(b"{not json").revoked_at
    assert CertRecord.decode(CertRecord(10.0, 1.0).encode()) == CertRecord(10.0, 1.0)


# ------------------------------------------------------------------ renewal timing

def _identity(ttl: float, received_at: float) -> Identity:
    key, ca = certs.new_ca(NOW)
    _, csr = node_tls.new_key_and_csr("n1")
    issued = dt.datetime.fromtimestamp(received_at, dt.UTC)
    cert = certs.issue_node(key, ca, certs.parse_csr(csr), "c", "n1", issued, dt.timedelta(seconds=ttl))
    return Identity("c", "n1", "", "h:1", "k", certs.cert_pem(cert).decode(), "ca", 0, received_at)


def test_renewal_comes_at_two_thirds_of_the_lifetime() -> None:
    t0 = NOW.timestamp()
    ident = _identity(90.0, t0)
    assert node_tls.renew_delay(ident, t0) == pytest.approx(60.0)
    assert node_tls.renew_delay(ident, t0 + 59) == pytest.approx(1.0)
    assert node_tls.renew_delay(ident, t0 + 70) == 0.0
    assert not node_tls.expired(ident, t0 + 89) and node_tls.expired(ident, t0 + 90)


# ------------------------------------------------------------------ the server's certificates

class Clock:
    def __init__(self) -> None:
        self.now = NOW

    def __call__(self) -> dt.datetime:
        return self.now


def _keys() -> ClusterKeys:
    ca_key, ca = certs.new_ca(NOW)
    return ClusterKeys(ca_key, ca, created=True)


def test_the_server_certificate_is_renewed_at_two_thirds_and_each_port_gets_it_once() -> None:
    clock = Clock()
    tls = ServerTls(_keys(), ["127.0.0.1"], clock=clock, ttl=dt.timedelta(hours=3))
    first = tls.serial
    api_fetch, node_fetch = tls._follow(None), tls._follow(b"roots")
    assert api_fetch() is None and node_fetch() is None  # nothing due
    clock.now = NOW + dt.timedelta(hours=1, minutes=59)
    assert api_fetch() is None and tls.serial == first
    clock.now = NOW + dt.timedelta(hours=2, minutes=1)
    assert node_fetch() is not None and tls.serial != first  # renewed by the node port's handshake ...
    assert api_fetch() is not None  # ... and the API port serves it too, once
    assert api_fetch() is None and node_fetch() is None


def test_a_brought_certificate_is_read_again_when_its_files_change(tmp_path: Path) -> None:
    def write(names: list[str]) -> x509.Certificate:
        ca_key, ca = certs.new_ca(NOW)
        key, cert = certs.issue_server(ca_key, ca, names, NOW)
        (tmp_path / "chain.pem").write_bytes(certs.cert_pem(cert) + certs.cert_pem(ca))
        (tmp_path / "key.pem").write_bytes(certs.key_pem(key))
        return ca

    first_root = write(["a.example"])
    tls = ServerTls(_keys(), ["127.0.0.1"], cert_file=tmp_path / "chain.pem", key_file=tmp_path / "key.pem")
    assert tls.api_root_fingerprint == certs.fingerprint(first_root)
    assert not tls._refresh_own()
    second_root = write(["b.example"])
    os.utime(tmp_path / "chain.pem", (1, 1))  # a different mtime, whatever the clock's resolution
    assert tls._refresh_own() and tls.api_root_fingerprint == certs.fingerprint(second_root)
    (tmp_path / "key.pem").write_text("half written")
    os.utime(tmp_path / "key.pem", (2, 2))
    assert not tls._refresh_own()  # unusable files: keep serving the current one
    assert tls.api_root_fingerprint == certs.fingerprint(second_root)


def test_a_brought_chain_without_its_root_or_with_another_key_is_refused(tmp_path: Path) -> None:
    ca_key, ca = certs.new_ca(NOW)
    key, cert = certs.issue_server(ca_key, ca, ["a"], NOW)
    (tmp_path / "leaf.pem").write_bytes(certs.cert_pem(cert))
    (tmp_path / "key.pem").write_bytes(certs.key_pem(key))
    with pytest.raises(TlsConfigError, match="must end with the root CA"):
        load_own(tmp_path / "leaf.pem", tmp_path / "key.pem")
    (tmp_path / "chain.pem").write_bytes(certs.cert_pem(cert) + certs.cert_pem(ca))
    (tmp_path / "other.pem").write_bytes(certs.key_pem(certs.new_key()))
    with pytest.raises(TlsConfigError, match="is not the key of the certificate"):
        load_own(tmp_path / "chain.pem", tmp_path / "other.pem")


def test_tls_failures_come_with_what_to_do() -> None:
    name = verification_hint("... Hostname Verification Check failed.", "10.0.0.5:7443")
    assert "does not name '10.0.0.5'" in name and "--advertise 10.0.0.5" in name
    assert "ccs login" in verification_hint("CERTIFICATE_VERIFY_FAILED: self signed", "h:1")
    assert verification_hint("connection refused", "h:1") == ""
