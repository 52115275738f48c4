"""A trigger call's delivery claim rides on its action's own etcd transaction (issue 13).

An accepted call is one etcd write: the claim (on its TTL lease), the action's keys and the
call's audit record share one revision. A refused call (a replay on another replica, an action
the API refuses) writes nothing but its audit record: no claim is made and given back.

What the calls wrote is read from etcd's own history (a watch from the revision before the
call up to the revision after it), restricted to the keys a trigger call can touch: the
cluster's subtree, its delivery claims and the audit records. The servers run without
reconcilers, so nothing else writes those keys in between. No timing is involved.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from ccs.v1 import resources_pb2 as pb
from ccs.v1 import triggers_pb2 as tpb
from controlplane.secrets.keyring import Keyring
from controlplane.secrets.store import SecretStore
from controlplane.store import keys
from controlplane.store.codec import decode
from controlplane.store.etcd import Etcd, WatchedChange
from controlplane.triggers.actions import Actions, Outcome
from controlplane.triggers.invoke import Invoker, Refused
from controlplane.triggers.records import DELIVERIES, TriggerStore
from controlplane.triggers.rules import Params
from tests.conftest import EtcdProc, start_server
from tests.integration.trigger_helpers import (
    TEMPLATE,
    Setup,
    ccs_headers,
    own_etcd_fixture,  # noqa: F401  (the own_etcd fixture)
    post,
    prepare,
)

pytestmark = pytest.mark.etcd


async def _revision(etcd: Etcd) -> int:
    return (await etcd.get_with_revision("/ccs/ping"))[1]


async def _written_since(etcd: Etcd, cluster: str, since: int) -> list[WatchedChange]:
    """Every change etcd made after revision ``since`` (up to now) that a trigger call in
    ``cluster`` could have made: its delivery claims, the cluster's records but its events (a
    call's event is checked on its own), and the audit records of trigger calls (so a record
    another component writes meanwhile, a server's own start for one, is not counted)."""
    now = await _revision(etcd)
    seen: list[WatchedChange] = []
    if now > since:

        async def history() -> None:
            async for batch in etcd.watch("/ccs/", since + 1):
                seen.extend(batch)
                if batch[-1].revision >= now:
                    return

        await asyncio.wait_for(history(), 60)
    events = f"{keys.subtree(cluster)}events/"

    def by_a_call(c: WatchedChange) -> bool:
        if c.kv.key.startswith(keys.AUDIT):
            return not c.deleted and _audit(c).method == "Trigger/POST"
        return c.kv.key.startswith((f"{DELIVERIES}{cluster}/", keys.subtree(cluster))) and not c.kv.key.startswith(events)

    return [c for c in seen if by_a_call(c)]


def _audit(change: WatchedChange) -> pb.AuditRecord:
    assert change.kv.key.startswith(keys.AUDIT), change.kv.key
    return decode(change.kv, pb.AuditRecord)


async def test_an_accepted_call_is_one_write_and_its_replay_on_another_replica_writes_only_its_record(
        tmp_path: Path, own_etcd: EtcdProc) -> None:
    a = start_server(tmp_path / "a", own_etcd.url, tmp_path / "a.yaml", extra=["--no-reconcilers"])
    b = start_server(tmp_path / "b", own_etcd.url, tmp_path / "b.yaml", extra=["--no-reconcilers"])
    etcd = Etcd([own_etcd.url])
    try:
        s = await prepare(a, "c1")
        secret = s.secrets["scale"]
        body = b'{"replicas": 3}'
        before = await _revision(etcd)
        r = await post(s, "scale", body, ccs_headers(secret, body, delivery="one-write-1"))
        assert r.status_code == 200, r.text
        wrote = await _written_since(etcd, s.cluster, before)
        assert len({c.revision for c in wrote}) == 1, [(c.revision, c.kv.key) for c in wrote]  # one transaction
        written = {c.kv.key for c in wrote}
        claims = [k for k in written if k.startswith(f"{DELIVERIES}{s.cluster}/shop/scale/")]
        assert len(claims) == 1 and keys.service(s.cluster, "shop", "web") in written
        record = next(_audit(c) for c in wrote if c.kv.key.startswith(keys.AUDIT))
        assert record.result == "OK" and record.wrote and "one-write-1" in record.message
        lease = (await etcd.client.get(claims[0].encode()))
        assert lease is not None and lease.lease  # the claim expires (its TTL lease)

        # The same delivery, freshly signed, on the other replica: refused, and its record is
        # the one thing it wrote.
        before = await _revision(etcd)
        replay = b'{"replicas": 5}'
        r = await post(Setup(b, s.cluster, s.secrets), "scale", replay,
                       ccs_headers(secret, replay, delivery="one-write-1"))
        assert r.status_code == 401 and "replay" in r.json()["error"], r.text
        wrote = await _written_since(etcd, s.cluster, before)
        assert len(wrote) == 1, [c.kv.key for c in wrote]
        record = _audit(wrote[0])
        assert record.result == "UNAUTHENTICATED" and not record.wrote and "replay" in record.message
        async with a.client() as cl:
            assert (await cl.services.get(s.cluster, "shop", "web")).spec.replicas == 3
    finally:
        await etcd.close()
        a.stop()
        b.stop()


async def test_a_refused_action_writes_only_its_record_and_no_claim(tmp_path: Path, own_etcd: EtcdProc) -> None:
    srv = start_server(tmp_path / "s", own_etcd.url, tmp_path / "s.yaml", extra=["--no-reconcilers"])
    etcd = Etcd([own_etcd.url])
    try:
        s = await prepare(srv, "c1")
        async with srv.client() as cl:  # an interpolated image: a retag is refused (409)
            await cl.applications.update(s.cluster, "shop", env={"TAG": "v1"},
                                         template=TEMPLATE.replace("local/webapp:v1", "local/webapp:${TAG}"))
        body = b'{"tag": "v2"}'
        before = await _revision(etcd)
        r = await post(s, "retag", body, ccs_headers(s.secrets["retag"], body, delivery="refused-1"))
        assert r.status_code == 409 and "interpolated" in r.json()["error"], r.text
        wrote = await _written_since(etcd, s.cluster, before)
        # Before the claim rode on the action's transaction, the claim was written, then
        # deleted again: two more writes here.
        assert len(wrote) == 1, [(c.kv.key, c.deleted) for c in wrote]
        record = _audit(wrote[0])
        assert record.result == "FAILED_PRECONDITION" and not record.wrote and "refused-1" in record.message
    finally:
        await etcd.close()
        srv.stop()



class _WritesNothing(Actions):
    """An action that changes nothing and writes nothing (the real ones all write: even an
    unchanged redeploy stores the application's new revision), so the call has no transaction
    for its claim to ride on."""

    async def run(self, trigger: tpb.Trigger, params: Params) -> Outcome:
        return Outcome("unchanged", message="nothing to do")


async def test_an_action_that_writes_nothing_claims_with_its_record_in_one_write_and_its_replay_is_refused(
        tmp_path: Path, own_etcd: EtcdProc) -> None:
    srv = start_server(tmp_path / "s", own_etcd.url, tmp_path / "s.yaml", extra=["--no-reconcilers"])
    etcd = Etcd([own_etcd.url])
    try:
        s = await prepare(srv, "c1")
        secrets = SecretStore(etcd, await Keyring.load_or_create(etcd, srv.state_dir / "secrets.key"))
        invoker = Invoker(TriggerStore(etcd, secrets), _WritesNothing(etcd, None, None),  # type: ignore[arg-type]
                          secrets.keyring)
        body = b"{}"
        before = await _revision(etcd)
        done = await invoker.signed_call(s.cluster, "shop", "again",
                                         ccs_headers(s.secrets["again"], body, delivery="same-1"), body, "test")
        assert done.outcome.result == "unchanged"
        wrote = await _written_since(etcd, s.cluster, before)
        assert len({c.revision for c in wrote}) == 1 and len(wrote) == 2, [(c.revision, c.kv.key) for c in wrote]
        record = next(_audit(c) for c in wrote if c.kv.key.startswith(keys.AUDIT))
        assert record.result == "OK" and not record.wrote and "nothing to do" in record.message
        assert any(c.kv.key.startswith(f"{DELIVERIES}{s.cluster}/shop/again/") for c in wrote)
        with pytest.raises(Refused) as refused:
            await invoker.signed_call(s.cluster, "shop", "again",
                                      ccs_headers(s.secrets["again"], body, delivery="same-1"), body, "test")
        assert refused.value.status == 401 and "replay" in refused.value.message
        await invoker.stop()
    finally:
        await etcd.close()
        srv.stop()
