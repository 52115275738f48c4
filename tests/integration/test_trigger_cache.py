"""The trigger cache never admits a secret that a committed rotation or removal replaced.

A server checks a call's signature against its watch-fed copy of the trigger and its secret
(:mod:`controlplane.triggers.cache`). These tests make the copy stale on purpose, the way a
replica that has not yet seen another replica's rotation would be: the cache is loaded, its
watches are stopped, then the rotation (or removal) is committed through a real server. The
claim, guarded on what the call was checked with, must then refuse the old secret and accept
the new one, with no timing involved. The action itself is replaced (it is not under test) by
one that writes a key of its own in one transaction, as a real action does: the claim rides on
that transaction, so a refused claim shows as a write that never landed. Etcd, the secrets
store, the cache and the invoker are the real ones.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import pytest

from ccs.v1 import triggers_pb2 as tpb
from controlplane.api.services import ServiceServicer
from controlplane.informer import Informer
from controlplane.secrets.keyring import Keyring
from controlplane.secrets.store import SecretStore
from controlplane.store.etcd import Etcd
from controlplane.store.txn import Txn
from controlplane.triggers.actions import Actions, Outcome
from controlplane.triggers.cache import TriggerCache
from controlplane.triggers.invoke import Accepted, Invoker, Refused
from controlplane.triggers.records import TriggerStore
from controlplane.triggers.rules import Params
from tests.conftest import ServerProc
from tests.integration.trigger_helpers import TEMPLATE, Setup, ccs_headers, prepare

pytestmark = pytest.mark.etcd

BODY = b'{"replicas": 2}'


class _Acted(Actions):
    """Real reads; the action writes one key of its own and counts the writes that landed (the
    scale write is the API's, tested elsewhere)."""

    calls = 0

    async def run(self, trigger: tpb.Trigger, params: Params) -> Outcome:
        revision = await Txn().put(f"/ccs-test/acted/{uuid.uuid4().hex}", b"1").commit(self.etcd)
        _Acted.calls += 1
        return Outcome("scaled", message="counted", revision=revision)


@asynccontextmanager
async def stale_invoker(server: ServerProc) -> AsyncIterator[tuple[Invoker, TriggerCache]]:
    """An invoker on the server's etcd and secrets key whose cache is loaded, then frozen."""
    etcd = Etcd([server.etcd_url])
    secrets = SecretStore(etcd, await Keyring.load_or_create(etcd, server.state_dir / "secrets.key"))
    cache = TriggerCache(etcd)
    await cache.start()
    await cache.stop()  # frozen: what a replica that has not seen the next change holds
    invoker = Invoker(TriggerStore(etcd, secrets), _Acted(etcd, None, None), secrets.keyring,  # type: ignore[arg-type]
                      cache=cache)
    try:
        yield invoker, cache
    finally:
        await invoker.stop()
        await etcd.close()


async def call(invoker: Invoker, s: Setup, secret: str) -> Accepted:
    return await invoker.signed_call(s.cluster, "shop", "scale", ccs_headers(secret, BODY), BODY, "test")


async def test_a_stale_cache_refuses_the_rotated_secret_and_takes_the_new_one(ccs_server: ServerProc,
                                                                                unique: str) -> None:
    s = await prepare(ccs_server, unique)
    old = s.secrets["scale"]
    async with stale_invoker(ccs_server) as (invoker, cache):
        assert cache.lookup(s.cluster, "shop", "scale") is not None
        async with ccs_server.client() as cl:
            new = (await cl.triggers.rotate(s.cluster, "shop", "scale")).secret
        # The cache still holds the old secret and the signature matches it: the claim's guard
        # on the record's revision refuses it (before, the copy would have admitted it).
        cached = cache.lookup(s.cluster, "shop", "scale")
        assert cached is not None and cached.trigger.secret_version == 1
        before = _Acted.calls
        with pytest.raises(Refused) as refused:
            await call(invoker, s, old)
        assert refused.value.status == 401 and "x-ccs-signature: does not match" in refused.value.message
        assert _Acted.calls == before
        # The new secret is taken although the copy does not know it yet (etcd is read).
        done = await call(invoker, s, new)
        assert done.outcome.result == "scaled" and _Acted.calls == before + 1


async def test_a_stale_cache_refuses_a_removed_trigger_and_its_successors_old_secret(ccs_server: ServerProc,
                                                                                     unique: str) -> None:
    s = await prepare(ccs_server, unique)
    old = s.secrets["scale"]
    async with stale_invoker(ccs_server) as (invoker, _):
        async with ccs_server.client() as cl:
            await cl.triggers.delete(s.cluster, "shop", "scale")
        with pytest.raises(Refused) as refused:
            await call(invoker, s, old)
        assert refused.value.status == 404
        # Made again under the same name: its secret's first version has the same key as the
        # removed one's, but not the same revision, so the old secret is refused still.
        async with ccs_server.client() as cl:
            new = (await cl.triggers.create(s.cluster, "shop", "scale", "scale", service="web")).secret
        before = _Acted.calls
        with pytest.raises(Refused) as refused:
            await call(invoker, s, old)
        assert refused.value.status == 401
        assert _Acted.calls == before
        assert (await call(invoker, s, new)).outcome.result == "scaled"


async def test_a_scale_from_a_stale_service_copy_keeps_the_newer_change(ccs_server: ServerProc, unique: str) -> None:
    """The scale action writes the informer's copy of the service back on its first try; a copy
    another write overtook fails the revision guard and the retry reads etcd, so the newer
    change (here the image an update set meanwhile) is kept, with the trigger's replicas."""
    s = await prepare(ccs_server, unique)
    etcd = Etcd([ccs_server.etcd_url])
    informer = Informer(etcd)
    await informer.start()
    await informer.stop()  # frozen before the update below
    try:
        async with ccs_server.client() as cl:
            await cl.applications.update(s.cluster, "shop", template=TEMPLATE.replace("webapp:v1", "webapp:v9"))
            trigger = next(t for t in await cl.triggers.list(s.cluster, "shop") if t.meta.name == "scale")
        stale = informer.clusters[s.cluster].services[("shop", "web")]
        assert stale.spec.image == "local/webapp:v1"
        actions = Actions(etcd, None, ServiceServicer(etcd, informer))  # type: ignore[arg-type]
        done = await actions.run(trigger, Params(replicas=4))
        assert done.result == "scaled"
        async with ccs_server.client() as cl:
            web = await cl.services.get(s.cluster, "shop", "web")
        assert (web.spec.image, web.spec.replicas) == ("local/webapp:v9", 4)
    finally:
        await etcd.close()
