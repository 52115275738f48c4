"""Tokens and the audit log on real ccs-servers over a real etcd (issue 12, "Roles and audit"):
the token lifecycle, the audit record of a change in the change's own transaction, refused and
failed changes audited with their answer, revocation at once on one replica and through the
token watch on another, ``ccs audit ls -f``, and a token's secret in no output but the one that
creates it. Who may call what is tests/integration/test_access_matrix.py.

Two servers share an etcd of their own, with ``--no-reconcilers`` so that a change's revision is
the API call's.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

import ccs
from ccs.v1 import resources_pb2 as pb
from controlplane.store import keys
from controlplane.store.etcd import Etcd
from tests.conftest import ROOT, TRUST, EtcdProc, ServerProc, start_etcd, start_server
from tests.integration.cli_process import command, environment, run_cli
from tests.integration.grpc_helpers import TEMPLATE

pytestmark = [pytest.mark.etcd, pytest.mark.timeout(180)]


@pytest.fixture(scope="module")
def own_etcd(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EtcdProc]:
    proc = start_etcd(tmp_path_factory.mktemp("tokens-etcd"))
    yield proc
    proc.stop()


@pytest.fixture(scope="module")
def servers(own_etcd: EtcdProc, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[ServerProc, ServerProc]]:
    base = tmp_path_factory.mktemp("tokens-servers")
    one = start_server(base / "one", own_etcd.url, base / "one.yaml", extra=["--no-reconcilers"])
    two = start_server(base / "two", own_etcd.url, base / "two.yaml", extra=["--no-reconcilers"],
                       expect_token=False)
    assert one.token, one.log_path.read_text()
    yield one, two
    two.stop()
    one.stop()


@pytest.fixture
async def admin(servers: tuple[ServerProc, ServerProc]) -> AsyncIterator[ccs.AsyncClient]:
    async with servers[0].client() as c:
        yield c


def as_token(admin: ccs.AsyncClient, token: str) -> ccs.AsyncClient:
    """A client to the admin client's server with another token, verified against its CA."""
    return ccs.AsyncClient(admin.address, token, ca_pem=TRUST[admin.address])


@pytest.fixture
async def store(own_etcd: EtcdProc) -> AsyncIterator[Etcd]:
    etcd = Etcd([own_etcd.url])
    yield etcd
    await etcd.close()


async def error(call: object) -> ccs.CcsError:
    try:
        await call  # type: ignore[misc]
    except ccs.CcsError as exc:
        return exc
    raise AssertionError("the call succeeded")


async def records(admin: ccs.AsyncClient, target: str) -> list[pb.AuditRecord]:
    return [r for r in await admin.audit.list() if r.target == target]


# ---------------------------------------------------------------- tokens


async def test_token_lifecycle(admin: ccs.AsyncClient, unique: str, store: Etcd) -> None:
    new = await admin.tokens.create(unique, role="deployer", clusters=["prod"], applications=["shop"], ttl="30d")
    t = new.token
    assert new.secret.startswith("ccs_") and new.secret not in repr(new)
    assert (t.meta.name, t.role, list(t.clusters), list(t.applications), t.created_by) == (
        unique, "deployer", ["prod"], ["shop"], "admin")
    assert abs(t.expires_at.seconds - t.meta.created_at.seconds - 30 * 86400) <= 1
    # stored hashed: the key is the digest, the id its first 16 digits; the secret is nowhere
    stored = await store.range(keys.TOKENS)
    assert any(kv.key.removeprefix(keys.TOKENS).startswith(t.meta.id) for kv in stored.kvs)
    assert not any(new.secret.encode() in kv.value or new.secret in kv.key for kv in stored.kvs)
    listed = {x.meta.name: x for x in await admin.tokens.list()}
    assert listed[unique] == t and "admin" in listed
    e = await error(admin.tokens.create(unique, role="viewer"))
    assert isinstance(e, ccs.AlreadyExists) and e.message == f"token {unique!r} already exists"
    e = await error(admin.tokens.create(f"{unique}-x", role="owner"))
    assert isinstance(e, ccs.InvalidArgument) and e.message == "role: 'owner' is not a role; roles: admin, deployer, viewer, trigger"
    e = await error(admin.tokens.create(f"{unique}-x", role="viewer", clusters=["Bad_Name"]))
    assert isinstance(e, ccs.InvalidArgument) and e.message.startswith("clusters[0]:")
    # revoked by id; the name is free again; a second revoke answers the same record
    revoked = await admin.tokens.revoke(t.meta.id)
    assert revoked.revoked_at.seconds > 0
    assert (await admin.tokens.revoke(t.meta.id)).revoked_at == revoked.revoked_at
    again = await admin.tokens.create(unique, role="viewer")
    assert again.token.meta.id != t.meta.id
    e = await error(admin.tokens.revoke("no-such-token"))
    assert isinstance(e, ccs.NotFound) and e.message == "token 'no-such-token' not found"


async def test_the_last_working_admin_token_cannot_be_revoked(admin: ccs.AsyncClient, unique: str) -> None:
    e = await error(admin.tokens.revoke("admin"))
    assert isinstance(e, ccs.FailedPrecondition)
    assert e.message == "token 'admin' is the last admin token that works; create another admin token before revoking it"
    other = await admin.tokens.create(unique, role="admin")
    async with as_token(admin, other.secret) as c:
        await c.tokens.revoke(unique)  # its own token, while the first admin token still works
        e = await error(c.clusters.list())
    assert isinstance(e, ccs.Unauthenticated) and e.message == f"token {unique!r} (id {other.token.meta.id}) was revoked"


async def test_an_expired_token_is_unauthenticated(admin: ccs.AsyncClient, unique: str) -> None:
    new = await admin.tokens.create(unique, role="viewer", ttl=1)
    async with as_token(admin, new.secret) as c:
        await c.clusters.list()  # works while it lives, and is cached from now on
        await asyncio.sleep(max(0.0, new.token.expires_at.seconds + new.token.expires_at.nanos / 1e9 - time.time()))
        e = await error(c.clusters.list())
    assert isinstance(e, ccs.Unauthenticated) and e.message.startswith(
        f"token {unique!r} (id {new.token.meta.id}) expired at ")


async def test_revocation_is_immediate_here_and_follows_the_watch_on_another_replica(
    servers: tuple[ServerProc, ServerProc], admin: ccs.AsyncClient, unique: str
) -> None:
    new = await admin.tokens.create(unique, role="viewer")
    async with servers[0].client(new.secret) as one, \
            servers[1].client(new.secret) as two:
        await one.clusters.list()
        await two.clusters.list()  # now in replica two's cache
        await admin.tokens.revoke(unique)
        e = await error(one.clusters.list())  # the revoking replica: at once
        assert isinstance(e, ccs.Unauthenticated)
        # the other: when its token watch delivers the change (at most the cache TTL, 5 s, without it)
        loop = asyncio.get_running_loop()
        end = loop.time() + 30
        while True:
            try:
                await two.clusters.list()
            except ccs.Unauthenticated as exc:
                assert exc.message == f"token {unique!r} (id {new.token.meta.id}) was revoked"
                break
            assert loop.time() < end, "replica two still accepts a revoked token"
            await asyncio.sleep(0.05)


# ---------------------------------------------------------------- audit


async def test_a_change_and_its_audit_record_are_one_transaction(
    admin: ccs.AsyncClient, unique: str, store: Etcd
) -> None:
    await admin.clusters.create(unique)
    await admin.applications.create(unique, "shop", TEMPLATE)
    ci = await admin.tokens.create(f"{unique}-ci", role="deployer", clusters=[unique], applications=["shop"])
    async with as_token(admin, ci.secret) as c:
        svc = await c.services.scale(unique, "shop", "web", 5)
    [rec] = await records(admin, f"service {unique}/shop/web")
    assert (rec.token_name, rec.token_id, rec.role, rec.method, rec.result, rec.wrote) == (
        f"{unique}-ci", ci.token.meta.id, "deployer", "ServiceService/ScaleService", "OK", True)
    assert rec.peer.startswith("ipv4:127.0.0.1:")
    # the record was created at the revision of the service's write: the same transaction
    assert rec.revision == svc.meta.resource_version
    kv = await store.get(keys.audit(rec.meta.name))
    assert kv is not None and kv.create_revision == kv.mod_revision == svc.meta.resource_version


async def test_refused_failed_and_no_op_changes_are_audited_with_their_answer(
    admin: ccs.AsyncClient, unique: str
) -> None:
    await admin.clusters.create(unique)
    viewer = await admin.tokens.create(f"{unique}-v", role="viewer")
    async with as_token(admin, viewer.secret) as c:
        e = await error(c.clusters.delete(unique))
    assert isinstance(e, ccs.PermissionDenied)
    e = await error(admin.services.scale(unique, "nope", "web", 1))
    assert isinstance(e, ccs.NotFound)
    await admin.applications.create(unique, "shop", TEMPLATE, dry_run=True)
    async with as_token(admin, "ccs_not-a-token") as c:
        await error(c.applications.delete(unique, "shop"))
    got = {(r.target, r.token_name, r.result, r.wrote, r.revision) for r in await admin.audit.list(
        since=time.time() - 60) if unique in r.target}
    assert got >= {
        (f"cluster {unique}", f"{unique}-v", "PERMISSION_DENIED", False, 0),
        (f"service {unique}/nope/web", "admin", "NOT_FOUND", False, 0),
        (f"application {unique}/shop", "admin", "OK", False, 0),   # a dry run writes nothing
        (f"application {unique}/shop", "", "UNAUTHENTICATED", False, 0),
    }
    denied = next(r for r in await records(admin, f"cluster {unique}") if r.result == "PERMISSION_DENIED")
    assert denied.message == (f"token '{unique}-v' (role viewer) may not call ClusterService/DeleteCluster: "
                              "it needs the 'clusters' permission, which the role does not have")


async def test_audit_list_since_and_watch(admin: ccs.AsyncClient, unique: str) -> None:
    start = await admin.audit.current_revision()
    watch = admin.audit.watch(from_revision=start + 1)
    await admin.clusters.create(unique)
    resp = await anext(watch)
    await watch.aclose()
    assert [(r.method, r.target, r.result) for r in resp.records] == [
        ("ClusterService/CreateCluster", f"cluster {unique}", "OK")]
    assert resp.records[0].revision == resp.revision
    later = await admin.audit.list(since=resp.records[0].meta.created_at.seconds)
    assert resp.records[0].meta.name in {r.meta.name for r in later}
    assert await admin.audit.list(since=time.time() + 3600) == []
    e = await error(admin.audit.list(since=-1))
    assert isinstance(e, ccs.InvalidArgument) and e.message.startswith("since:")


# ---------------------------------------------------------------- the CLI, and secrets


#: No config file: the CLI is given the server, the token and the CA as flags.
NO_CONFIG = {"CCS_CONFIG": "/nonexistent"}


def flags(server: ServerProc, token: str) -> list[str]:
    return ["--server", server.address, "--token", token, "--ca-file", str(server.state_dir / "ca.crt")]


def cli(server: ServerProc, token: str, *args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return run_cli(*flags(server, token), *args, home=server.state_dir, timeout=timeout, env=NO_CONFIG)


def test_token_secrets_appear_in_no_output_but_the_one_that_creates_them(
    servers: tuple[ServerProc, ServerProc], unique: str
) -> None:
    srv = servers[0]
    created = cli(srv, srv.token, "token", "create", unique, "--role", "deployer", "--cluster", unique, "--ttl", "1h")
    assert created.returncode == 0, created.stderr
    secret = created.stdout.strip()
    assert secret.startswith("ccs_") and created.stdout == secret + "\n"  # the token alone, for scripts
    assert secret not in created.stderr and f"token {unique} created" in created.stderr
    outputs = [
        cli(srv, srv.token, "cluster", "create", unique),
        cli(srv, secret, "app", "deploy", "-c", unique, "-f", str(ROOT / "deploy/examples/hello/compose.yaml"),
            "--name", "hello"),
        cli(srv, secret, "app", "ls", "-c", unique, "-o", "json"),
        cli(srv, secret, "service", "scale", "-c", unique, "hello/nope", "2"),     # NOT_FOUND
        cli(srv, secret, "cluster", "rm", unique),                                # PERMISSION_DENIED
        cli(srv, secret, "cluster", "ls"),                                        # PERMISSION_DENIED
        cli(srv, secret, "token", "ls", "-o", "json"),                            # PERMISSION_DENIED
        cli(srv, srv.token, "token", "ls", "-o", "json"),
        cli(srv, srv.token, "token", "ls"),
        cli(srv, srv.token, "events", "-c", unique, "-o", "json"),
        cli(srv, srv.token, "token", "revoke", unique),
        cli(srv, secret, "app", "rm", "-c", unique, "hello"),                     # UNAUTHENTICATED
        cli(srv, srv.token, "audit", "ls", "-o", "json"),
        cli(srv, srv.token, "audit", "ls"),
    ]
    codes = [r.returncode for r in outputs]
    assert codes == [0, 0, 0, 3, 6, 6, 6, 0, 0, 0, 0, 6, 0, 0], [(r.args[7:], r.stderr) for r in outputs]
    audit = json.loads(outputs[-2].stdout)
    assert {(r["target"], r["result"]) for r in audit if r.get("token_name") == unique} >= {
        (f"application {unique}/hello", "OK"), (f"cluster {unique}", "PERMISSION_DENIED"),
        (f"application {unique}/hello", "UNAUTHENTICATED")}
    logs = srv.log_path.read_text() + servers[1].log_path.read_text()
    for text in [logs, *(r.stdout + r.stderr for r in outputs)]:
        assert secret not in text


def test_audit_ls_follows_new_records(servers: tuple[ServerProc, ServerProc], unique: str) -> None:
    srv = servers[0]
    follow = subprocess.Popen(
        command(*flags(srv, srv.token), "audit", "ls", "-f", "--since", "1s", "-o", "json"),
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=ROOT,
        env=environment(srv.state_dir, NO_CONFIG),
    )
    try:
        assert cli(srv, srv.token, "cluster", "create", unique).returncode == 0
        assert follow.stdout is not None
        seen = []
        for line in follow.stdout:  # ends with the process, if it ever did (the test timeout)
            seen.append(json.loads(line))
            if seen[-1]["target"] == f"cluster {unique}":
                break
        assert seen[-1]["method"] == "ClusterService/CreateCluster" and seen[-1]["result"] == "OK"
    finally:
        follow.terminate()
        follow.wait(10)


def test_token_create_usage_errors(servers: tuple[ServerProc, ServerProc], unique: str) -> None:
    srv = servers[0]
    res = cli(srv, srv.token, "token", "create", unique, "--role", "viewer", "--ttl", "5x")
    assert res.returncode == 2 and "--ttl" in res.stderr
    res = cli(srv, srv.token, "token", "create", unique, "--role", "viewer", "--app", "shop")
    assert res.returncode == 4
    assert res.stderr == ("error: applications: role viewer is limited by cluster only (use --cluster), "
                          "not by application\n")


def test_server_refuses_a_bad_audit_retention(tmp_path: Path) -> None:
    res = subprocess.run([sys.executable, "-m", "controlplane.main", "--audit-retention", "a month"],
                         capture_output=True, text=True, cwd=ROOT, timeout=60)
    assert res.returncode == 2 and "--audit-retention: must be a duration" in res.stderr
