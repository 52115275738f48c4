"""HTTPS routes at deploy, against a real server and etcd: `x-ccs.routes[].tls.secret` is
resolved to a secret version (the latest, or the pinned one) and its certificate is checked
before anything is stored, naming the field; the value never enters a spec or an answer; a
route's certificate cannot be removed while the route uses it; a new version moves an unpinned
route in place (no new generation, no release).
"""

from __future__ import annotations

import asyncio
import ssl
from pathlib import Path
from typing import Any

import pytest

import ccs
from ccs.v1 import resources_pb2 as pb
from nodeagent.agent import Agent
from nodeagent.router import Router, RouterSettings
from nodeagent.runtime import FakeRuntime
from tests.conftest import free_port
from tests.route_certs import TestCA

from .router_helpers import get, https_get, needs_haproxy
from .test_node_certs import WAIT, running, until

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

        # Another application may share the domain's secret, not bring another one.
        other = TEMPLATE.replace("domain: shop.example, path: /api", "domain: other.example")
        await client.secrets.create(unique, "rogue-cert", ca.leaf("shop.example", serial=15))
        with pytest.raises(ccs.InvalidArgument, match=FIELD + r"secret 'rogue-cert' .*served by application 'shop' "
                                                      r"with certificate secret 'shop-cert'"):
            await client.applications.create(unique, "rogue", other % {"ref": "rogue-cert"})
        await client.applications.create(unique, "friend", other % {"ref": "shop-cert"})
        await client.applications.delete(unique, "friend")

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


@needs_haproxy
async def test_end_to_end_a_certificate_update_reaches_the_router_without_a_rollout_or_reload(
    ccs_server: Any, unique: str, tmp_path: Path
) -> None:
    """Server, etcd, a real agent (FakeRuntime for the engine) and its real HAProxy: the deployed
    route is served over HTTPS with the secret's certificate, HTTP redirects, and `ccs secret
    update` makes the router serve the new certificate by the runtime API (same HAProxy worker),
    with the service's generation and releases unchanged."""
    ca = TestCA()
    router = Router(RouterSettings(state_dir=tmp_path / "router", bind_address="127.0.0.1", port=free_port(),
                                   https_port=free_port()))
    https = router.settings.https_port
    async with ccs_server.client() as client:
        await client.clusters.create(unique)
        token = await client.clusters.join_token(unique)
        await client.secrets.create(unique, "shop-cert", ca.leaf("shop.example", serial=21))
        agent = Agent(ccs_server.address, runtime=FakeRuntime(), name="n1", join_token=token,
                      address="127.0.0.1", state_dir=tmp_path / "agent", router=router)
        async with running(agent):
            await asyncio.wait_for(agent.connected.wait(), WAIT)
            await client.applications.create(unique, "shop", TEMPLATE % {"ref": "shop-cert"})
            await until(lambda: served(ca, https) == 21, "the router serves the certificate")
            assert (await get(router.settings.port, "shop.example", "/x"))[2]["location"] == \
                f"https://shop.example:{https}/x"
            worker = (await router.api.show_info())["Pid"]
            svc = await client.services.get(unique, "shop", "web")
            await until(lambda: running_ids(client, unique), "the container runs")
            containers = await running_ids(client, unique)
            releases = len(await client.releases.list(unique, "shop"))

            await client.secrets.update(unique, "shop-cert", ca.leaf("shop.example", serial=22))
            await until(lambda: served(ca, https) == 22, "the router serves the new certificate")
            assert (await router.api.show_info())["Pid"] == worker  # no reload
            after = await client.services.get(unique, "shop", "web")
            assert after.generation == svc.generation
            assert len(await client.releases.list(unique, "shop")) == releases
            assert await running_ids(client, unique) == containers  # none replaced
            await client.applications.delete(unique, "shop")


async def running_ids(client: Any, cluster: str) -> set[str]:
    listed = await client.containers.list(cluster, application="shop")
    return {c.meta.id for c in listed if c.status.state == pb.CONTAINER_STATE_RUNNING}


def served(ca: TestCA, port: int) -> int | None:
    """The serial of the certificate the router presents for shop.example, None if none yet."""
    try:
        return https_get(ca.pem, port, "shop.example")[2]
    except (OSError, ssl.SSLError):
        return None
