"""A trigger's action refused by the API answers the API's refusal in HTTP's words (issue 13).

The status comes from the API's one gRPC-error mapping (``controlplane.grpc_errors``), so a
policy refusal is a 403 naming the template's field and the policy to change (it was a 500
"internal error: PermissionDenied"), and a template the server refuses is a 400 naming the
field. Either way nothing changes, and the delivery id is given back for a redelivery.
"""

from __future__ import annotations

from typing import Any, cast

import aetcd
import grpc
import pytest

import ccs
from ccs.v1 import resources_pb2 as pb
from ccs.v1 import triggers_pb2 as tpb
from ccs.v1 import triggers_pb2_grpc
from controlplane.secrets.keyring import Keyring
from controlplane.secrets.store import SecretStore
from controlplane.store import keys
from controlplane.store.etcd import Etcd
from controlplane.triggers.actions import Actions
from controlplane.triggers.invoke import Invoker
from controlplane.triggers.records import TriggerStore
from controlplane.triggers.rules import RateLimiter
from controlplane.triggers.servicer import TriggerServicer
from tests.conftest import ServerProc
from tests.integration.trigger_helpers import TEMPLATE, Setup, ccs_headers, post, state

pytestmark = pytest.mark.etcd

PRIVILEGED = TEMPLATE.replace("    command: sleep 3600\n", "    command: sleep 3600\n    privileged: true\n")


async def _setup(server: ServerProc, cluster: str, template: str) -> Setup:
    async with server.client() as cl:
        await cl.clusters.create(cluster)
        await cl.clusters.update(cluster, allow=["privileged"])
        await cl.applications.create(cluster, "shop", template)
        made = await cl.triggers.create(cluster, "shop", "again", "redeploy")
    return Setup(server, cluster, {"again": made.secret})


async def test_a_policy_refusal_answers_403_naming_the_field(ccs_server: ServerProc, unique: str) -> None:
    s = await _setup(ccs_server, unique, PRIVILEGED)
    async with ccs_server.client() as cl:
        await cl.clusters.update(unique, deny=["privileged"])  # tightened after the deploy
    before = await state(s)
    body = b'{"version": "2"}'
    r = await post(s, "again", body, ccs_headers(s.secrets["again"], body, delivery="ci-1"))
    assert r.status_code == 403, r.text
    error = r.json()["error"]
    assert "services.db.privileged" in error and f"ccs cluster update {unique} --allow privileged" in error
    assert await state(s) == before  # nothing written, the claim given back
    async with ccs_server.client() as cl:
        await cl.clusters.update(unique, allow=["privileged"])
        audit = [a for a in await cl.audit.list() if a.method == "Trigger/POST"]
    assert any(a.result == "PERMISSION_DENIED" and "services.db.privileged" in a.message for a in audit)
    r = await post(s, "again", body, ccs_headers(s.secrets["again"], body, delivery="ci-1"))
    assert r.status_code == 200, r.text  # the redelivery, once allowed


async def test_a_template_the_server_refuses_answers_400_naming_the_field(ccs_server: ServerProc,
                                                                          unique: str) -> None:
    """A stored template that this server's checks refuse (as one an older ccs accepted would be)."""
    s = await _setup(ccs_server, unique, TEMPLATE)
    host, port = ccs_server.etcd_url.removeprefix("http://").split(":")
    async with aetcd.Client(host=host, port=int(port)) as etcd:
        got = await etcd.get(keys.app(unique, "shop").encode())
        assert got is not None
        app = pb.Application.FromString(got.value)
        where = keys.revision(unique, "shop", app.spec.template_revision or app.revision).encode()
        got = await etcd.get(where)
        assert got is not None
        snap = pb.ApplicationRevision.FromString(got.value)
        snap.spec.template = TEMPLATE.replace("deploy: {replicas: 1}", "deploy: {replicas: -1}")
        await etcd.put(where, snap.SerializeToString())
    before = await state(s)
    body = b""
    r = await post(s, "again", body, ccs_headers(s.secrets["again"], body))
    assert r.status_code == 400, r.text
    assert "services.web.deploy.replicas" in r.json()["error"]
    assert await state(s) == before


class StoppedClock(RateLimiter):
    """The server's limiter (burst 10, one a second) with time standing still: no token comes
    back between calls, however slowly a loaded machine makes them."""

    def take(self, key: str, now: float) -> bool:
        return super().take(key, 0.0)


class Aborted(grpc.aio.AbortError):
    def __init__(self, code: grpc.StatusCode, message: str) -> None:
        super().__init__(code, message)
        self.code = code


class AbortingContext:
    """What the servicer uses of a grpc.aio.ServicerContext: ``abort``."""

    async def abort(self, code: grpc.StatusCode, message: str, *_: Any) -> None:
        raise Aborted(code, message)


async def test_invoke_trigger_counts_the_rate_limit_before_reading_anything(ccs_server: ServerProc,
                                                                            unique: str) -> None:
    """``InvokeTrigger`` of a trigger that does not exist: the first ten calls (the burst) are
    looked up and answered NOT_FOUND, every later one is refused by the limit without a read.
    (It read etcd first: every call answered NOT_FOUND, a flood cost a read each.) The servicer
    and its invoker run here on the server's etcd, with the limiter's clock stopped (it was the
    server's, and the test relied on 30 calls taking less than 20 seconds); a spy on the etcd
    client sees the reads."""
    async with ccs_server.client() as cl:
        await cl.clusters.create(unique)
    etcd = Etcd([ccs_server.etcd_url])
    try:
        secrets = SecretStore(etcd, await Keyring.load_or_create(etcd, ccs_server.state_dir / "secrets.key"))
        invoker = Invoker(TriggerStore(etcd, secrets), Actions(etcd, None, None), secrets.keyring,  # type: ignore[arg-type]
                          limiter=StoppedClock())
        servicer = TriggerServicer(etcd, secrets, invoker)
        read: list[str] = []
        real_get, real_range = etcd.get, etcd.range

        async def get(key: str) -> Any:
            read.append(key)
            return await real_get(key)

        async def range_(prefix: str, *args: Any, **kwargs: Any) -> Any:
            read.append(prefix)
            return await real_range(prefix, *args, **kwargs)

        etcd.get, etcd.range = get, range_  # type: ignore[method-assign]
        answers = []
        for _ in range(30):
            before = len(read)
            with pytest.raises(Aborted) as refused:
                await servicer.InvokeTrigger(
                    tpb.InvokeTriggerRequest(cluster=unique, application="shop", name="nope"),
                    cast(grpc.aio.ServicerContext, AbortingContext()))
            answers.append((refused.value.code.name, len(read) > before))
    finally:
        await etcd.close()
    assert answers == [("NOT_FOUND", True)] * 10 + [("RESOURCE_EXHAUSTED", False)] * 20


async def test_a_rate_limit_refusal_is_rate_limited_not_message_too_large(ccs_server: ServerProc,
                                                                           unique: str) -> None:
    """gRPC answers RESOURCE_EXHAUSTED both for its size limit and for the trigger's rate limit;
    the server's ``rate-limited`` reason makes the SDK raise ``RateLimited`` with the wait and
    no size hint (it raised ``MessageTooLarge`` saying "ccs requests are at most 4 MiB").

    The trigger servicer runs here, on the server's etcd, behind a real gRPC server that the SDK
    calls, with the limiter's clock stopped: the burst of 10 is spent by the first ten calls and
    the eleventh is refused, however slowly a loaded machine makes them (the test went through
    the server's own limiter and needed 100 calls to come faster than one a second)."""
    async with ccs_server.client() as cl:
        await cl.clusters.create(unique)
    etcd = Etcd([ccs_server.etcd_url])
    server = grpc.aio.server()
    try:
        secrets = SecretStore(etcd, await Keyring.load_or_create(etcd, ccs_server.state_dir / "secrets.key"))
        invoker = Invoker(TriggerStore(etcd, secrets), Actions(etcd, None, None), secrets.keyring,  # type: ignore[arg-type]
                          limiter=StoppedClock())
        triggers_pb2_grpc.add_TriggerServiceServicer_to_server(TriggerServicer(etcd, secrets, invoker), server)
        port = server.add_insecure_port("127.0.0.1:0")
        await server.start()
        answers: list[str] = []
        refused: ccs.errors.CcsError | None = None
        async with ccs.AsyncClient(f"127.0.0.1:{port}", "unused", tls=False) as sdk:
            for _ in range(11):
                try:
                    await sdk.triggers.invoke(unique, "shop", "nope")
                except ccs.errors.NotFound:
                    answers.append("not found")
                except ccs.errors.CcsError as e:
                    answers.append("refused")
                    refused = e
    finally:
        await server.stop(None)
        await etcd.close()
    assert answers == ["not found"] * 10 + ["refused"]
    assert isinstance(refused, ccs.RateLimited), repr(refused)
    assert not isinstance(refused, ccs.errors.MessageTooLarge)
    assert refused.temporary and 0 < refused.retry_after <= 1.0
    assert "4 MiB" not in refused.message and "more than 1 calls a second" in refused.message
    assert "retry in" in refused.message
