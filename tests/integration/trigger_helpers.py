"""Helpers of the trigger tests: an application with three triggers, signed calls over HTTPS,
and the state a refused call must leave as it was."""

from __future__ import annotations

import ssl
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import aetcd
import httpx
import pytest

from controlplane.triggers.records import DELIVERIES
from controlplane.triggers.signature import ccs_signature
from tests.conftest import EtcdProc, ServerProc, start_etcd

TEMPLATE = """
services:
  web:
    image: local/webapp:v1   # the tag CI moves
    deploy: {replicas: 1}
  db:
    image: local/busybox:1
    command: sleep 3600
"""


@pytest.fixture(name="own_etcd")
def own_etcd_fixture(tmp_path: Path) -> Iterator[EtcdProc]:
    """``own_etcd``: an etcd of the test's own, for tests that start and restart servers on it
    and count what was written, with no other test's data about. A module that uses it imports
    ``own_etcd_fixture`` (pytest finds fixtures among a module's names)."""
    proc = start_etcd(tmp_path)
    yield proc
    proc.stop()


@dataclass
class Setup:
    server: ServerProc
    cluster: str
    secrets: dict[str, str]  # trigger name -> its secret


def http(server: ServerProc) -> httpx.AsyncClient:
    assert server.ca_pem and server.http_url, "the server logged no HTTPS endpoint"
    ctx = ssl.create_default_context(cadata=server.ca_pem)
    return httpx.AsyncClient(base_url=server.http_url, verify=ctx, timeout=30)


def ccs_headers(secret: str, body: bytes, *, delivery: str = "", at: float | None = None) -> dict[str, str]:
    stamp = str(int(time.time() if at is None else at))
    return {"content-type": "application/json", "x-ccs-timestamp": stamp,
            "x-ccs-delivery": delivery or str(uuid.uuid4()),
            "x-ccs-signature": ccs_signature(secret.encode(), stamp, body)}


async def prepare(server: ServerProc, cluster: str, callback: str = "") -> Setup:
    async with server.client() as cl:
        await cl.clusters.create(cluster)
        await cl.applications.create(cluster, "shop", TEMPLATE)
        secrets = {}
        for name, action, service in (("retag", "update-image", "web"), ("scale", "scale", "web"),
                                      ("again", "redeploy", "")):
            made = await cl.triggers.create(cluster, "shop", name, action, service=service,
                                            callback_url=callback if name == "scale" else "")
            assert made.trigger.url == f"{server.http_url}/v1/triggers/{cluster}/shop/{name}"
            secrets[name] = made.secret
    return Setup(server, cluster, secrets)


async def state(s: Setup) -> tuple[int, str, int, int]:
    """What a refused call must leave as it was: the app's revision and template, web's
    replicas, and how many delivery claims etcd holds for the cluster."""
    async with s.server.client() as cl:
        got = await cl.applications.get(s.cluster, "shop")
        web = await cl.services.get(s.cluster, "shop", "web")
    host, port = s.server.etcd_url.removeprefix("http://").split(":")
    async with aetcd.Client(host=host, port=int(port)) as etcd:
        claims = len((await etcd.get_prefix(f"{DELIVERIES}{s.cluster}/".encode(), keys_only=True)).kvs)
    return got.application.revision, got.application.spec.template, web.spec.replicas, claims


async def post(s: Setup, name: str, body: bytes, headers: dict[str, str]) -> httpx.Response:
    async with http(s.server) as h:
        return await h.post(f"/v1/triggers/{s.cluster}/shop/{name}", content=body, headers=headers)


