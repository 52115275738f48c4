"""ccs.route_certificates: which PEM files can serve a route's domain, and the messages."""

from __future__ import annotations

import datetime

import pytest
from cryptography.hazmat.primitives.asymmetric import ec

from ccs.route_certificates import check_certificate, covers
from tests.route_certs import NOW, TestCA

WHERE = "x-ccs.routes[0].tls.secret (shop-cert@1)"


@pytest.fixture(scope="module")
def ca() -> TestCA:
    return TestCA()


@pytest.mark.parametrize(
    ("names", "domain", "ok"),
    [
        (("shop.example",), "shop.example", True),
        (("SHOP.example",), "shop.example.", True),
        (("*.example",), "shop.example", True),
        (("*.example",), "example", False),
        (("*.example",), "a.shop.example", False),
        (("*.example",), "*.example", True),  # a wildcard route needs the wildcard itself
        (("shop.example",), "*.example", False),
        ((), "shop.example", False),
    ],
)
def test_covers(names: tuple[str, ...], domain: str, ok: bool) -> None:
    assert covers(names, domain) is ok


def test_a_good_chain_and_key(ca: TestCA) -> None:
    info = check_certificate(ca.leaf("shop.example", "www.shop.example", serial=77), "www.shop.example", NOW, WHERE)
    assert info.serial == 77 and info.names == ("shop.example", "www.shop.example")


def test_refusals_name_the_field_and_the_reason(ca: TestCA) -> None:
    good = ca.leaf("shop.example", serial=2)
    cert_only = good[: good.index(b"-----BEGIN PRIVATE KEY")]
    other_key = ca.leaf("shop.example", serial=3, key=ec.generate_private_key(ec.SECP256R1()))
    mismatched = cert_only + other_key[other_key.index(b"-----BEGIN PRIVATE KEY"):]
    cases = {
        b"not a pem": "holds no PEM certificate",
        cert_only: "exactly one PEM private key, found 0",
        good + good[good.index(b"-----BEGIN PRIVATE KEY"):]: "exactly one PEM private key, found 2",
        mismatched: "does not match the first certificate",
        ca.leaf("other.example", serial=4): "does not cover 'shop.example' (its DNS names: other.example)",
        ca.leaf("shop.example", serial=5, days=-0): "expired at",
    }
    for pem, reason in cases.items():
        with pytest.raises(ValueError) as exc:
            check_certificate(pem, "shop.example", NOW + datetime.timedelta(seconds=1), WHERE)
        assert str(exc.value).startswith(WHERE + ": ") and reason in str(exc.value)
        assert "PRIVATE KEY" not in str(exc.value)

