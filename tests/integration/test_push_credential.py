"""``RegistryService/GetPushCredential`` on a real ``ccs-server`` over a real etcd: the one call that
answers with a registry login's password, for ``ccs app deploy --build --push-to`` (issue 13).

- A deployer of the cluster gets it; a viewer, a deployer of another cluster and a trigger token
  are refused (PERMISSION_DENIED), as the access matrix also says.
- Every call is an audit record naming who and which host, refused ones too; no record, event or
  log line holds the password.
- A plaintext server (``--insecure``) never sends it: FAILED_PRECONDITION saying why.

The push itself with the credential (and the password in no output of the CLI) is
tests/integration/test_registry.py's, against a real registry and engine.
"""

from __future__ import annotations

from pathlib import Path

import pytest

import ccs
from tests.conftest import ServerProc, start_etcd, start_server

pytestmark = pytest.mark.etcd

HOST = "registry.example:5000"
PASSWORD = "push-pw-7c2e19"


async def refused(call: object) -> ccs.CcsError:
    try:
        await call  # type: ignore[misc]
    except ccs.CcsError as exc:
        return exc
    raise AssertionError("the call succeeded")


async def test_a_deployer_gets_it_a_viewer_does_not_and_every_call_is_audited(ccs_server: ServerProc,
                                                                              unique: str) -> None:
    other = unique + "-b"
    async with ccs_server.client() as admin:
        await admin.clusters.create(unique)
        await admin.clusters.create(other)
        await admin.registries.login(unique, HOST, "ci", PASSWORD)
        deployer = await admin.tokens.create(f"{unique}-dep", role="deployer", clusters=[unique],
                                             applications=["shop"])
        viewer = await admin.tokens.create(f"{unique}-view", role="viewer", clusters=[unique])
        elsewhere = await admin.tokens.create(f"{unique}-dep-b", role="deployer", clusters=[other])

    async with ccs_server.client(deployer.secret) as cl:
        got = await cl.registries.push_credential(unique, HOST)
        assert (got.host, got.username, got.password) == (HOST, "ci", PASSWORD)
        e = await refused(cl.registries.push_credential(unique, "other.example"))
        assert isinstance(e, ccs.NotFound) and e.message == "registry login 'other.example' not found"
    async with ccs_server.client(viewer.secret) as cl:
        e = await refused(cl.registries.push_credential(unique, HOST))
        assert isinstance(e, ccs.PermissionDenied) and "'push' permission" in e.message
        assert PASSWORD not in e.message
    async with ccs_server.client(elsewhere.secret) as cl:
        e = await refused(cl.registries.push_credential(unique, HOST))
        assert isinstance(e, ccs.PermissionDenied) and f"limited to cluster(s) {other}" in e.message

    async with ccs_server.client() as admin:
        records = [r for r in await admin.audit.list() if r.method == "RegistryService/GetPushCredential"
                   and r.target.startswith(f"registry login {unique}/")]
        events = await admin.events.list(unique)
    seen = sorted((r.token_name, r.target.rpartition("/")[2], r.result) for r in records)
    assert seen == sorted([
        (f"{unique}-dep", HOST, "OK"), (f"{unique}-dep", "other.example", "NOT_FOUND"),
        (f"{unique}-view", HOST, "PERMISSION_DENIED"), (f"{unique}-dep-b", HOST, "PERMISSION_DENIED"),
    ]), seen
    assert all(PASSWORD not in str(r) for r in records)
    assert all(PASSWORD not in str(e) for e in events)
    assert PASSWORD not in ccs_server.log_path.read_text(errors="replace")


async def test_a_plaintext_server_never_sends_the_password(tmp_path: Path, unique: str) -> None:
    etcd = start_etcd(tmp_path, "etcd")
    srv = start_server(tmp_path / "state", etcd.url, tmp_path / "c.yaml", extra=["--insecure"])
    try:
        async with srv.client() as cl:
            await cl.clusters.create(unique)
            await cl.registries.login(unique, HOST, "ci", PASSWORD)
            e = await refused(cl.registries.push_credential(unique, HOST))
        assert isinstance(e, ccs.FailedPrecondition) and "only on a TLS connection" in e.message
        assert PASSWORD not in e.message
    finally:
        srv.stop()
        etcd.stop()
