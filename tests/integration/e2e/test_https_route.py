"""An HTTPS route end to end on the 3-host testbed: a real container behind every host's real
router, the certificate from a ccs secret (issue 12, "Routers terminate HTTPS").

`local/webapp:v1` answers "v1"; its route names `shop.example` with `tls.secret`. Every host's
router serves it on its HTTPS port with the secret's certificate (checked by serial, verified
against the test CA, SNI `shop.example`), the request reaches the container (the body is the
container's answer), plain HTTP to the domain is redirected to HTTPS with 308, and `ccs secret
update` moves every router to the new certificate with the same container still answering.
"""

from __future__ import annotations

import functools
import http.client
import ssl
from pathlib import Path

import pytest

from tests.route_certs import TestCA

from ..router_helpers import https_get
from .conftest import Cluster3

pytestmark = [pytest.mark.slow, pytest.mark.docker]

HOSTS = [f"10.77.0.1{i}" for i in (1, 2, 3)]
HTTP_PORT, HTTPS_PORT = 9080, 9443  # the agents' defaults
TEMPLATE = """
services:
  web:
    image: local/webapp:v1
    x-ccs:
      routes:
        - {port: 8080, domain: shop.example, tls: {secret: %(secret)s}}
"""


def served(ca: TestCA, host: str) -> tuple[int, str, int] | None:
    """(status, body, certificate serial) of GET / over HTTPS to ``host``'s router; None while
    it does not answer yet."""
    try:
        return https_get(ca.pem, HTTPS_PORT, "shop.example", host=host)
    except (OSError, ssl.SSLError):
        return None


def answering(ca: TestCA, host: str, serial: int) -> tuple[int, str, int] | None:
    """The answer of ``host``'s router once it presents the certificate ``serial`` (else None)."""
    got = served(ca, host)
    return (got[0], got[1].strip(), got[2]) if got is not None and got[2] == serial else None


def test_every_router_serves_the_route_over_https_from_a_real_container(
    cluster3: Cluster3, app_name: str, tmp_path: Path
) -> None:
    c = cluster3
    secret = f"{app_name}-cert"
    ca = TestCA()
    pem = tmp_path / "cert.pem"
    pem.write_bytes(ca.leaf("shop.example", serial=31))
    c.ccs("secret", "create", "-c", c.name, secret, "-f", str(pem))
    try:
        c.deploy(app_name, TEMPLATE % {"secret": secret})
        c.wait_for("web running", lambda: c.live(app_name, "web"), timeout=90)
        [web] = c.live(app_name, "web")
        docker_id = web.status.docker_id
        for host in HOSTS:
            got = c.wait_for(f"{host} serving shop.example over HTTPS",
                             functools.partial(answering, ca, host, 31), timeout=60)
            assert got == (200, "v1", 31), (host, got)

            plain = http.client.HTTPConnection(host, HTTP_PORT, timeout=10)
            plain.request("GET", "/x", headers={"Host": "shop.example"})
            answer = plain.getresponse()
            assert answer.status == 308 and answer.getheader("location") == f"https://shop.example:{HTTPS_PORT}/x"
            plain.close()

        pem.write_bytes(ca.leaf("shop.example", serial=32))
        c.ccs("secret", "update", "-c", c.name, secret, "-f", str(pem))
        for host in HOSTS:
            got = c.wait_for(f"{host} serving the new certificate",
                             functools.partial(answering, ca, host, 32), timeout=60)
            assert got == (200, "v1", 32), (host, got)
        assert [x.status.docker_id for x in c.live(app_name, "web")] == [docker_id]  # not rolled out
    finally:
        c.ccs("app", "rm", "-c", c.name, app_name, check=False)
        c.wait_for("the app gone", lambda: not c.containers(app_name), timeout=90)
        c.ccs("secret", "rm", "-c", c.name, secret, check=False)
