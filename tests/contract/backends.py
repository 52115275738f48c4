"""What the contract tests share: the two backends (the SDK's fake and a real server) and
small helpers. The fixtures that pick a backend are in conftest.py."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

import aetcd

import ccs
from ccs._transport import Transport
from ccs.testing import FakeApi
from ccs.v1 import resources_pb2 as pb

TOKEN = "ccs_contract-token"
V1 = """
services:
  web:
    image: local/webapp:${TAG:-v1}
    deploy: {replicas: 2}
  db:
    image: local/busybox:1
"""


@dataclass
class Backend:
    kind: str
    address: str
    token: str
    fake: FakeApi | None = None
    etcd_url: str = ""
    ca_pem: str | None = None  # the real server's CA; the fake is plaintext (in-process)

    def client(self, token: str | None = None) -> ccs.AsyncClient:
        return ccs.AsyncClient(self.address, self.token if token is None else token,
                               tls=self.ca_pem is not None, ca_pem=self.ca_pem)

    async def corrupt_service(self, client: ccs.AsyncClient, cluster: str, app: str, service: str) -> str:
        """Damage a service's stored record; returns the etcd key the error must name."""
        if self.fake is not None:
            return self.fake.corrupt(("service", cluster, app, service))
        from controlplane.store import keys

        key = keys.service(cluster, app, service)
        host, port = self.etcd_url.removeprefix("http://").split(":")
        etcd = aetcd.Client(host, int(port))
        try:
            await etcd.put(key.encode(), b"\x00not a protobuf\xff\xff")
        finally:
            await etcd.close()
        # Gets are served from the leader's cache; it has seen the damage once it reported it.
        loop = asyncio.get_running_loop()
        end = loop.time() + 30
        while not any(e.reason == "Undecodable" and key in e.message for e in await client.events.list(cluster)):
            assert loop.time() < end, "the damaged record was never reported"
            await asyncio.sleep(0.2)
        return key


def raw(client: ccs.AsyncClient, backend: Backend) -> Transport:
    """Calls that skip the SDK's own argument checks, to see the server's answer."""
    return Transport(client._channel, backend.token, 10)


async def error(call: object) -> ccs.CcsError:
    try:
        await call  # type: ignore[misc]
    except ccs.CcsError as exc:
        return exc
    raise AssertionError("the call succeeded")


async def deployed(client: ccs.AsyncClient, cluster: str) -> pb.Application:
    await client.clusters.create(cluster)
    return await client.applications.create(cluster, "shop", V1)
