"""How large an application may be, on a real ccs-server and a real etcd.

An application and all its services are one etcd transaction (all or nothing), so etcd's
per-transaction limits bound an application: ``--max-txn-ops`` (128 by default) bounds
the services, ``--max-request-bytes`` (1.5 MiB) the bytes. The embedded etcd raises the
first; an external etcd keeps its own. Too large is INVALID_ARGUMENT naming the limit, with
nothing written; the template is stored once per write, so a 1 MiB template fits.
"""

from __future__ import annotations

import asyncio
import signal
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import grpc
import pytest
from aetcd import rpc

from ccs.v1 import api_pb2, api_pb2_grpc
from controlplane.store import TooLarge, keys
from controlplane.store.etcd import Etcd
from tests.conftest import free_port, start_server
from tests.integration.cli_process import cli
from tests.integration.grpc_helpers import TEMPLATE, Stubs, code_of, deploy, make_cluster, stubs

pytestmark = [pytest.mark.etcd, pytest.mark.timeout(300)]
MIB = 1024 * 1024


def many_services(n: int, command: str = "sleep 3600") -> str:
    return "services:\n" + "".join(
        f"  s{i}:\n    image: local/busybox:1\n    command: {command}\n" for i in range(n)
    )


@pytest.fixture
async def store(etcd: Any) -> AsyncIterator[Etcd]:
    client = Etcd([etcd.url])
    yield client
    await client.close()


async def app_keys(store: Etcd, cluster: str) -> list[str]:
    """The keys API writes make (the reconciler adds containers and events on its own)."""
    res = await store.range(keys.subtree(cluster), keys_only=True)
    skip = ("/events/", "/containers/")
    return [kv.key for kv in res.kvs if not any(p in kv.key for p in skip) and not kv.key.endswith("/jointoken")]


# ---------------------------------------------------------------- operations per transaction

async def test_500_services_on_a_default_etcd_are_refused_naming_the_limit(
    api: Stubs, store: Etcd, unique: str
) -> None:
    await make_cluster(api, unique)
    for dry_run in (True, False):
        code, msg = await code_of(deploy(api, unique, template=many_services(500), dry_run=dry_run))
        assert code == grpc.StatusCode.INVALID_ARGUMENT, msg
        assert msg.startswith("services: 500 services") and "at most 128 (--max-txn-ops)" in msg, msg
    assert await app_keys(store, unique) == []  # nothing written


async def test_an_update_counts_the_services_it_adds_and_removes(
    api: Stubs, store: Etcd, unique: str
) -> None:
    """100 services renamed: 100 deletes and 100 creates do not fit 128; nothing changes."""
    await make_cluster(api, unique)
    await deploy(api, unique, template=many_services(100))
    before = await app_keys(store, unique)
    renamed = many_services(100).replace("  s", "  t")
    for dry_run in (True, False):
        code, msg = await code_of(api.apps.UpdateApplication(
            api_pb2.UpdateApplicationRequest(cluster=unique, name="shop", template=renamed, dry_run=dry_run),
            metadata=api.metadata))
        assert code == grpc.StatusCode.INVALID_ARGUMENT, msg
        assert msg.startswith("services: 100 services") and "(--max-txn-ops)" in msg, msg
    assert await app_keys(store, unique) == before


async def test_an_explicit_empty_application_name_is_invalid(api: Stubs, unique: str) -> None:
    await make_cluster(api, unique)
    code, msg = await code_of(deploy(api, unique, name=""))
    assert code == grpc.StatusCode.INVALID_ARGUMENT and msg.startswith("name:"), msg


def test_500_services_cli_exit_4_not_cannot_reach_server(ccs_server: Any, unique: str, tmp_path: Path) -> None:
    assert cli(ccs_server, "cluster", "create", unique, home=tmp_path, timeout=120).returncode == 0
    (tmp_path / "big").mkdir()
    (tmp_path / "big" / "compose.yaml").write_text(many_services(500))
    res = cli(ccs_server, "app", "deploy", "-c", unique, "-f", str(tmp_path / "big"), home=tmp_path, timeout=120)
    assert res.returncode == 4, res.stderr
    assert "services: 500 services" in res.stderr and "128" in res.stderr
    assert "cannot reach" not in res.stderr


async def test_500_services_deploy_and_update_atomically_on_the_embedded_etcd(tmp_path: Path) -> None:
    """The embedded etcd allows more operations: 500 services are one transaction."""
    srv = start_server(tmp_path / "state", None, tmp_path / "config.yaml",
                       extra=["--embedded-etcd-port", str(free_port()), "--no-reconcilers"])
    api = stubs(srv.address, srv.token)
    store = None
    try:
        await make_cluster(api, "big")
        created = await deploy(api, "big", name="many", template=many_services(500))
        assert created.status.services == 500
        store = Etcd(["127.0.0.1:" + str(_embedded_port(srv))])
        res = await store.range(keys.services("big", "many"))
        assert len(res.kvs) == 500
        app_kv = await store.get(keys.app("big", "many"))
        assert app_kv is not None and {kv.create_revision for kv in res.kvs} == {app_kv.create_revision}
        # every service changes: one transaction again, with a release of all 500
        updated = await api.apps.UpdateApplication(
            api_pb2.UpdateApplicationRequest(cluster="big", name="many",
                                             template=many_services(500, "sleep 3601")),
            metadata=api.metadata,
        )
        assert updated.revision == 2
        res = await store.range(keys.services("big", "many"))
        assert {kv.mod_revision for kv in res.kvs} == {updated.meta.resource_version}
        got = await api.apps.GetApplication(api_pb2.GetApplicationRequest(cluster="big", name="many"),
                                            metadata=api.metadata)
        assert {s.spec.command[-1] for s in got.services} == {"3601"}
    finally:
        await api.channel.close()
        if store is not None:
            await store.close()
        assert srv.stop(signal.SIGTERM) == 0, srv.log_path.read_text()


def _embedded_port(srv: Any) -> int:
    argv = srv.proc.args
    return int(argv[argv.index("--embedded-etcd-port") + 1])


# ---------------------------------------------------------------- bytes per request

def big_template(tag: str, size: int = MIB - 4096) -> str:
    """A template of about ``size`` bytes: a real app plus a long comment (under 1 MiB)."""
    base = TEMPLATE.replace("${TAG:-v1}", tag)
    line = "# " + "x" * 1000 + "\n"
    return base + line * ((size - len(base)) // len(line))


async def test_a_1_mib_template_deploys_updates_and_rolls_back(
    api: Stubs, store: Etcd, unique: str
) -> None:
    await make_cluster(api, unique)
    v1, v2 = big_template("v1"), big_template("v2")
    assert 0.99 * MIB < len(v1.encode()) <= MIB
    created = await deploy(api, unique, template=v1)
    assert created.spec.template == v1
    # an update that changes the template, then one that changes only the version
    req = api_pb2.UpdateApplicationRequest(cluster=unique, name="shop", template=v2)
    assert (await api.apps.UpdateApplication(req, metadata=api.metadata)).spec.template == v2
    req = api_pb2.UpdateApplicationRequest(cluster=unique, name="shop", version="3")
    third = await api.apps.UpdateApplication(req, metadata=api.metadata)
    assert (third.revision, third.spec.template) == (3, v2)
    # the template is stored once per revision that brought it, nowhere else
    app_kv = await store.get(keys.app(unique, "shop"))
    assert app_kv is not None and len(app_kv.value) < 64 * 1024
    stored = (await store.range(keys.revisions(unique, "shop"))).kvs
    assert [len(kv.value) > MIB // 2 for kv in stored] == [True, True, False]
    for kv in (await store.range(keys.releases(unique, "shop"))).kvs:
        assert len(kv.value) < 64 * 1024
    # every read gives the whole template back
    got = await api.apps.GetApplication(api_pb2.GetApplicationRequest(cluster=unique, name="shop"),
                                        metadata=api.metadata)
    assert got.application.spec.template == v2 and got.application.spec.version == "3"
    revisions = await api.apps.ListRevisions(api_pb2.ListRevisionsRequest(cluster=unique, name="shop"),
                                             metadata=api.metadata)
    assert [r.spec.template for r in revisions.revisions] == [v1, v2, v2]
    back = await api.apps.RollbackApplication(
        api_pb2.RollbackApplicationRequest(cluster=unique, name="shop", to_revision=1), metadata=api.metadata)
    assert (back.revision, back.spec.template) == (4, v1)
    services = {s.meta.name: s for s in (await api.apps.GetApplication(
        api_pb2.GetApplicationRequest(cluster=unique, name="shop"), metadata=api.metadata)).services}
    assert services["web"].spec.image == "local/webapp:v1"


async def test_a_release_rolled_back_restores_a_1_mib_template(
    api: Stubs, store: Etcd, unique: str
) -> None:
    """The release reconciler's revert writes the application and a snapshot: both point at
    the revision holding the template instead of carrying it (twice would not fit)."""
    await make_cluster(api, unique)
    v1, v2 = big_template("v1"), big_template("v2")
    await deploy(api, unique, template=v1)
    req = api_pb2.UpdateApplicationRequest(cluster=unique, name="shop", template=v2, strategy="blue-green")
    await api.apps.UpdateApplication(req, metadata=api.metadata)  # no node: it waits for the new side
    await api_pb2_grpc.ReleaseServiceStub(api.channel).RollbackRelease(
        api_pb2.ReleaseActionRequest(cluster=unique, application="shop"), metadata=api.metadata)
    for _ in range(1200):
        got = await api.apps.GetApplication(api_pb2.GetApplicationRequest(cluster=unique, name="shop"),
                                            metadata=api.metadata)
        if got.application.revision == 3:
            break
        await asyncio.sleep(0.05)
    assert (got.application.revision, got.application.spec.template) == (3, v1)
    revisions = await api.apps.ListRevisions(api_pb2.ListRevisionsRequest(cluster=unique, name="shop"),
                                             metadata=api.metadata)
    assert [r.spec.template for r in revisions.revisions] == [v1, v2, v1]
    assert "automatic rollback" in revisions.revisions[-1].note


async def test_an_application_too_large_to_store_names_the_byte_limit(
    api: Stubs, store: Etcd, unique: str
) -> None:
    """A template under 1 MiB whose bulk is a service's environment is stored twice over (the
    template, and the parsed service): refused up front, naming etcd's request limit."""
    await make_cluster(api, unique)
    bulk = "x" * (MIB - 8192)
    template = "services:\n  web:\n    image: local/busybox:1\n    environment:\n      BULK: " + bulk + "\n"
    code, msg = await code_of(deploy(api, unique, template=template))
    assert code == grpc.StatusCode.INVALID_ARGUMENT, msg
    assert msg.startswith("template:") and "(--max-request-bytes)" in msg, msg
    assert await app_keys(store, unique) == []


# ---------------------------------------------------------------- etcd's own refusal

async def test_etcd_refusing_a_transaction_is_too_large_not_unavailable(store: Etcd) -> None:
    """If etcd's real limits are lower than ccs was told, its refusal still says what it is."""
    store.max_txn_ops, store.max_request_bytes = 10_000, 100 * MIB  # skip the check up front
    puts = [rpc.RequestOp(request_put=rpc.PutRequest(key=f"/ccs/limit-test/{i}".encode(), value=b"x"))
            for i in range(200)]
    with pytest.raises(TooLarge) as ops:
        await store.txn([], puts)
    assert ops.value.what == "operations" and "--max-txn-ops" in str(ops.value)
    big = [rpc.RequestOp(request_put=rpc.PutRequest(key=b"/ccs/limit-test/big", value=b"x" * (2 * MIB)))]
    with pytest.raises(TooLarge) as size:
        await store.txn([], big)
    assert size.value.what == "bytes" and "--max-request-bytes" in str(size.value)
    assert await store.count("/ccs/limit-test/") == 0

