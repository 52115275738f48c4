"""HTTPS routes at deploy, against a real server and etcd: `x-ccs.routes[].tls.secret` is
resolved to a secret version (the latest, or the pinned one) and its certificate is checked
before anything is stored, naming the field; the value never enters a spec or an answer; a
route's certificate cannot be removed while the route uses it; a new version moves an unpinned
route in place (no new generation, no release).
"""

from __future__ import annotations

from typing import Any

import pytest

import ccs
from tests.route_certs import TestCA

pytestmark = [pytest.mark.etcd, pytest.mark.timeout(180)]

TEMPLATE = """
services:
  web:
    image: local/busybox:1
    command: ["sleep", "600"]
    x-ccs:
      routes:
        - {port: 80, domain: shop.example, tls: {secret: %(ref)s}}
        - {port: 80, domain: shop.example, path: /api}
"""
FIELD = r"^services\.web\.x-ccs\.routes\.tls\.secret: "


async def test_deploy_resolves_and_checks_the_route_certificate(ccs_server: Any, unique: str) -> None:
    ca = TestCA()
    good = ca.leaf("shop.example", serial=11)
    async with ccs_server.client() as client:
        await client.clusters.create(unique)
        template = TEMPLATE % {"ref": "shop-cert"}
        with pytest.raises(ccs.InvalidArgument, match=FIELD + r"secret 'shop-cert' \(route shop.example/\) does not "
                                                      r"exist.*ccs secret create shop-cert"):
            await client.applications.create(unique, "shop", template)
        # A certificate for another name, then one whose key is not the leaf's: refused.
        await client.secrets.create(unique, "shop-cert", ca.leaf("other.example", serial=12))
        with pytest.raises(ccs.InvalidArgument, match=FIELD + r"secret shop-cert@1: the certificate does not cover "
                                                      r"'shop.example'"):
            await client.applications.create(unique, "shop", template)
        wrong_key = good[: good.index(b"-----BEGIN PRIVATE KEY")] + ca.leaf("x.example", serial=13)[-300:]
        await client.secrets.update(unique, "shop-cert", wrong_key)
        with pytest.raises(ccs.InvalidArgument, match=FIELD + r"secret shop-cert@2: ") as refused:
            await client.applications.create(unique, "shop", template)
        assert b"PRIVATE" not in str(refused.value).encode()
        assert [a.meta.name for a in await client.applications.list(unique)] == []

        await client.secrets.update(unique, "shop-cert", good)
        await client.applications.create(unique, "shop", template)
        svc = await client.services.get(unique, "shop", "web")
        tls = {r.path: (r.tls.secret, r.tls.version, r.tls.pinned) for r in svc.spec.routes if r.HasField("tls")}
        assert tls == {"/": ("shop-cert", 3, False)}
        assert good not in svc.SerializeToString() and b"PRIVATE KEY" not in svc.SerializeToString()

        # A route's certificate cannot be removed while the route uses it.
        with pytest.raises(ccs.FailedPrecondition, match="shop"):
            await client.secrets.delete(unique, "shop-cert")

        # A new version moves an unpinned route to it in place: same generation, no release
        # (the routers replace the certificate; no container is touched).
        generation, releases = svc.generation, len(await client.releases.list(unique, "shop"))
        await client.secrets.update(unique, "shop-cert", ca.leaf("shop.example", serial=14))
        svc = await client.services.get(unique, "shop", "web")
        assert [r.tls.version for r in svc.spec.routes if r.HasField("tls")] == [4]
        assert svc.generation == generation
        assert len(await client.releases.list(unique, "shop")) == releases

        # Pinned: the version asked for, which must exist.
        await client.applications.update(unique, "shop", template=TEMPLATE % {"ref": "shop-cert@3"})
        svc = await client.services.get(unique, "shop", "web")
        assert [(r.tls.version, r.tls.pinned) for r in svc.spec.routes if r.HasField("tls")] == [(3, True)]
        with pytest.raises(ccs.InvalidArgument, match=FIELD + r"secret 'shop-cert@9'"):
            await client.applications.update(unique, "shop", template=TEMPLATE % {"ref": "shop-cert@9"})
        await client.applications.delete(unique, "shop")
