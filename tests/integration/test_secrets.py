"""Secrets and configs through a real ccs-server on a real etcd (issue 12, "Secrets and configs"):
versions, no value in any answer, encryption at rest, key rotation, templates mounting them
resolved to versions, and a new version rolling the services that mount it unpinned."""

from __future__ import annotations

import asyncio
import hashlib
import json
from pathlib import Path
from typing import Any

import pytest

import ccs
from controlplane.store.etcd import Etcd

from .cli_process import cli

pytestmark = [pytest.mark.etcd, pytest.mark.timeout(180)]

VALUE = b"hunter2-very-secret-value"


TEMPLATE = """
services:
  web:
    image: local/busybox:1
    command: ["sleep", "600"]
    secrets: [db, {source: pinned, target: /etc/pw, uid: "100", gid: "101", mode: "0400"}]
    configs: [conf]
secrets:
  db: {external: true, name: %(db)s}
  pinned: {external: true, name: %(db)s@1}
configs:
  conf: {file: ./app.conf}
"""


async def etcd_dump(url: str, prefix: str) -> bytes:
    etcd = Etcd([url])
    res = await etcd.range(prefix)
    return b"\n".join(kv.value for kv in res.kvs)


async def test_versions_no_value_in_answers_and_encrypted_at_rest(ccs_server: Any, unique: str) -> None:
    async with ccs_server.client() as client:
        await client.clusters.create(unique)
        first = await client.secrets.create(unique, "db", VALUE)
        assert (first.version, list(first.versions), first.size) == (1, [1], len(VALUE))
        assert first.digest.startswith("hmac-sha256:") and VALUE not in first.SerializeToString()
        assert hashlib.sha256(VALUE).hexdigest() not in first.digest  # not a test of a guess
        with pytest.raises(ccs.AlreadyExists):
            await client.secrets.create(unique, "db", b"other")
        second = await client.secrets.update(unique, "db", VALUE + b"2")
        assert (second.version, list(second.versions)) == (2, [1, 2])
        assert (await client.secrets.get(unique, "db")).version == 2
        assert (await client.secrets.get(unique, "db@1")).digest == first.digest
        with pytest.raises(ccs.NotFound, match="db@7"):
            await client.secrets.get(unique, "db@7")
        with pytest.raises(ccs.InvalidArgument, match=r"^name: "):
            await client.secrets.create(unique, "bad name", VALUE)
        listed = await client.secrets.list(unique)
        assert [(s.name, s.version) for s in listed] == [("db", 2)]
        for msg in (first, second, *listed):
            assert VALUE not in msg.SerializeToString()
        # A config is readable back.
        conf = await client.configs.create(unique, "conf", b"k=v\n")
        assert (await client.configs.get(unique, "conf")).data == b"k=v\n" and conf.version == 1

    # At rest: neither the value nor the key file is in etcd.
    stored = await etcd_dump(ccs_server.etcd_url, f"/ccs/secrets/{unique}/")
    assert stored and VALUE not in stored and b"k=v" not in stored
    keyring = await etcd_dump(ccs_server.etcd_url, "/ccs/secretkeys/")
    key_file = (ccs_server.state_dir / "secrets.key").read_text().strip()
    assert keyring and key_file.encode() not in keyring

    # The CLI never prints the value either, in any output format.
    for args in (("secret", "ls", "-c", unique), ("secret", "get", "db", "-c", unique),
                 ("secret", "ls", "-c", unique, "-o", "json"), ("secret", "get", "db@1", "-c", unique, "-o", "json")):
        res = cli(ccs_server, *args)
        assert res.returncode == 0, (args, res.stderr)
        assert VALUE.decode() not in res.stdout + res.stderr
    assert "sha256:" in cli(ccs_server, "secret", "get", "db", "-c", unique).stdout
    # The audit records of the changes name the secret, never the value.
    async with ccs_server.client() as client:
        records = await client.audit.list()
    mine = [r for r in records if r.target.endswith(f"{unique}/db")]
    assert {r.method for r in mine} >= {"SecretService/CreateSecret", "SecretService/UpdateSecret"}
    assert all(VALUE.decode() not in str(r) for r in records)
    assert VALUE.decode() not in ccs_server.log_path.read_text()

    # Removing the cluster removes its secrets and configs with it.
    async with ccs_server.client() as client:
        await client.clusters.delete(unique, force=True)
    assert await etcd_dump(ccs_server.etcd_url, f"/ccs/secrets/{unique}/") == b""


async def test_rotate_key_reencrypts_every_value_and_they_still_decrypt(ccs_server: Any, unique: str) -> None:
    async with ccs_server.client() as client:
        await client.clusters.create(unique)
        await client.configs.create(unique, "conf", b"config-body")
        await client.secrets.create(unique, "db", VALUE)
        before = json.loads(await etcd_dump(ccs_server.etcd_url, f"/ccs/secrets/{unique}/secret/db/"))
        rotated = await client.secrets.rotate_key()
        assert rotated.key_generation == before["key_generation"] + 1 and rotated.reencrypted >= 2
        after = json.loads(await etcd_dump(ccs_server.etcd_url, f"/ccs/secrets/{unique}/secret/db/"))
        assert after["key_generation"] == rotated.key_generation and after["value"] != before["value"]
        # Only the new data key is left in etcd, and every value decrypts under it.
        keyring = (await Etcd([ccs_server.etcd_url]).range("/ccs/secretkeys/")).kvs
        assert [kv.key for kv in keyring] == [f"/ccs/secretkeys/{rotated.key_generation:06d}"]
        assert (await client.configs.get(unique, "conf")).data == b"config-body"
    res = cli(ccs_server, "secret", "rotate-key")
    assert res.returncode == 0, res.stderr


async def test_a_template_mounts_versions_and_an_update_rolls_the_unpinned_services(
    ccs_server: Any, unique: str
) -> None:
    async with ccs_server.client() as client:
        await client.clusters.create(unique)
        template = TEMPLATE % {"db": "db"}
        # A missing external secret refuses the template, naming the field and the fix.
        with pytest.raises(ccs.InvalidArgument, match=r"^secrets\.db\.external: secret 'db' does not exist.*"
                                                      r"ccs secret create db"):
            await client.applications.create(unique, "shop", template, files={"app.conf": "a=1"})
        await client.secrets.create(unique, "db", VALUE)
        # A dry run checks everything and stores nothing, not even the application's own config.
        await client.applications.create(unique, "shop", template, files={"app.conf": "a=1"}, dry_run=True)
        assert await client.configs.list(unique) == []
        await client.applications.create(unique, "shop", template, files={"app.conf": "a=1"})
        svc = await client.services.get(unique, "shop", "web")
        refs = [(r.name, r.version, r.pinned, r.target, r.uid, r.gid, r.mode) for r in svc.spec.secrets]
        assert refs == [("db", 1, False, "/run/secrets/db", "0", "0", 0o444),
                        ("db", 1, True, "/etc/pw", "100", "101", 0o400)]
        assert [(r.name, r.version, r.target) for r in svc.spec.configs] == [("shop_conf", 1, "/conf")]
        assert VALUE not in svc.SerializeToString()
        # The application's own config is stored as shop_conf and readable.
        assert (await client.configs.get(unique, "shop_conf")).data == b"a=1"
        generation = svc.generation

        # A new version rolls the service: the unpinned ref moves, the pinned one does not.
        await client.secrets.update(unique, "db", VALUE + b"-v2")
        svc = await client.services.get(unique, "shop", "web")
        assert [(r.version, r.pinned) for r in svc.spec.secrets] == [(2, False), (1, True)]
        assert svc.generation == generation + 1
        releases = await client.releases.list(unique, "shop")
        assert releases and releases[-1].spec.strategy == "rolling"

        # An update of the application with a changed file stores a new version of its own config.
        await client.applications.update(unique, "shop", template=template, files={"app.conf": "a=2"})
        svc = await client.services.get(unique, "shop", "web")
        assert [(r.name, r.version) for r in svc.spec.configs] == [("shop_conf", 2)]
        assert (await client.configs.get(unique, "shop_conf")).data == b"a=2"

        # Removing a mounted secret is refused, naming the application.
        with pytest.raises(ccs.FailedPrecondition, match="shop"):
            await client.secrets.delete(unique, "db")
        await client.applications.delete(unique, "shop")


async def test_rolling_back_the_release_of_a_secret_update_restores_the_previous_version(
    ccs_server: Any, unique: str
) -> None:
    async with ccs_server.client() as client:
        await client.clusters.create(unique)
        await client.secrets.create(unique, "db", VALUE)
        await client.applications.create(unique, "shop", TEMPLATE % {"db": "db"}, files={"app.conf": "a=1"})
        await client.secrets.update(unique, "db", VALUE + b"-v2")
        assert [r.version for r in (await client.services.get(unique, "shop", "web")).spec.secrets] == [2, 1]
        await client.releases.rollback(unique, "shop")
        loop = asyncio.get_running_loop()
        end = loop.time() + 60
        while [r.version for r in (await client.services.get(unique, "shop", "web")).spec.secrets] != [1, 1]:
            assert loop.time() < end, "the rollback never restored version 1"
            await asyncio.sleep(0.2)


async def test_an_application_that_cannot_be_reapplied_keeps_its_version_and_gets_a_warning(
    ccs_server: Any, unique: str
) -> None:
    template = """
services:
  web:
    image: local/busybox:1
    cap_add: [NET_ADMIN]
    secrets: [db]
secrets:
  db: {external: true}
"""
    async with ccs_server.client() as client:
        await client.clusters.create(unique)
        await client.clusters.update(unique, allow=["cap_add"])
        await client.secrets.create(unique, "db", VALUE)
        await client.applications.create(unique, "net", template)
        await client.clusters.update(unique, deny=["cap_add"])  # the template no longer passes
        updated = await client.secrets.update(unique, "db", VALUE + b"-v2")
        assert updated.version == 2
        svc = await client.services.get(unique, "net", "web")
        assert [r.version for r in svc.spec.secrets] == [1]
        events = [e for e in await client.events.list(unique) if e.reason == "SecretRollFailed"]
        assert len(events) == 1 and "secret db version 2 not rolled out" in events[0].message
        assert "cap_add" in events[0].message and VALUE.decode() not in events[0].message


def test_the_cli_reads_values_from_a_file_or_stdin_and_prints_only_configs(
    ccs_server: Any, unique: str, tmp_path: Path
) -> None:
    assert cli(ccs_server, "cluster", "create", unique).returncode == 0
    res = cli(ccs_server, "secret", "create", "db", "--from-stdin", "-c", unique, stdin=VALUE.decode())
    assert res.returncode == 0 and VALUE.decode() not in res.stdout + res.stderr, res.stderr
    value_file = tmp_path / "v2"
    value_file.write_bytes(VALUE + b"-v2")
    res = cli(ccs_server, "secret", "update", "db", "-f", str(value_file), "-c", unique, "-o", "json")
    assert res.returncode == 0 and json.loads(res.stdout)["version"] == "2", res.stderr
    # Neither or both sources: a usage error (exit 2), naming the options.
    for args in ((), ("-f", str(value_file), "--from-stdin")):
        res = cli(ccs_server, "secret", "create", "other", *args, "-c", unique)
        assert res.returncode == 2 and "--file" in res.stderr, res.stderr
    res = cli(ccs_server, "secret", "create", "other", "-f", str(tmp_path / "missing"), "-c", unique)
    assert res.returncode == 4 and res.stderr.startswith("error: --file: cannot read "), res.stderr
    assert "No such file or directory" in res.stderr
    assert cli(ccs_server, "config", "create", "conf", "-f", str(value_file), "-c", unique).returncode == 0
    assert cli(ccs_server, "config", "get", "conf", "--data", "-c", unique).stdout == (VALUE + b"-v2").decode()
    table = cli(ccs_server, "config", "get", "conf", "-c", unique).stdout
    assert "conf" in table and VALUE.decode() not in table
    res = cli(ccs_server, "secret", "rm", "db", "-c", unique)
    assert res.returncode == 0 and "secret db removed" in res.stdout
    res = cli(ccs_server, "secret", "get", "db", "-c", unique)
    assert res.returncode == 3 and "secret 'db' not found" in res.stderr


async def test_an_applications_own_secrets_go_with_it_and_no_other_mounts_them(ccs_server: Any, unique: str) -> None:
    own = """
services:
  web:
    image: local/busybox:1
    secrets: [pw]
    configs: [conf]
secrets:
  pw: {environment: PW}
configs:
  conf: {content: "a=1"}
"""
    borrower = """
services:
  web:
    image: local/busybox:1
    configs: [theirs]
configs:
  theirs: {external: true, name: shop_conf}
"""
    async with ccs_server.client() as client:
        await client.clusters.create(unique)
        await client.secrets.create(unique, "shared", VALUE)  # made by hand: never removed with an app
        await client.applications.create(unique, "shop", own, env={"PW": VALUE.decode()})
        # Another application's template may not mount them (they are shop's own).
        with pytest.raises(ccs.InvalidArgument, match=r"^configs\.theirs\.external: .*belongs to application 'shop'"):
            await client.applications.create(unique, "other", borrower)
        assert {s.name for s in await client.secrets.list(unique)} == {"shared", "shop_pw"}
        await client.applications.delete(unique, "shop")
        # Its secret and config went with it; the shared one stays.
        assert [s.name for s in await client.secrets.list(unique)] == ["shared"]
        assert [c.name for c in await client.configs.list(unique)] == []


async def test_a_templates_own_secret_values_are_not_kept_with_the_application(ccs_server: Any, unique: str) -> None:
    """``file:`` and ``environment:`` secrets: their values go to the secrets store only, never
    into the stored application, its revisions, its answers or a watch; a re-parse of the stored
    template (an update without files, a secret update rolling it) uses the stored version."""
    template = """
services:
  web:
    image: local/busybox:1
    secrets: [f, e]
    environment: {PLAIN: "${PLAIN}"}
secrets:
  f: {file: ./pw.txt}
  e: {environment: PW}
"""
    from_file, from_env = b"file-secret-5e1a", b"env-secret-77c0"
    async with ccs_server.client() as client:
        await client.clusters.create(unique)
        await client.applications.create(unique, "shop", template, files={"pw.txt": from_file.decode()},
                                         env={"PW": from_env.decode(), "PLAIN": "shown"})
        answer = (await client.applications.get(unique, "shop")).SerializeToString()
        assert from_file not in answer and from_env not in answer
        svc = await client.services.get(unique, "shop", "web")
        assert [(r.name, r.version) for r in svc.spec.secrets] == [("shop_f", 1), ("shop_e", 1)]
        assert svc.spec.environment["PLAIN"] == "shown"
        # A change of nothing but the version re-parses the stored template: same secrets, same specs.
        await client.applications.update(unique, "shop", version="2")
        after = await client.services.get(unique, "shop", "web")
        assert after.generation == svc.generation and after.spec == svc.spec
        # A new file value is a new version, and rolls the service.
        await client.applications.update(unique, "shop", template=template, files={"pw.txt": "new-value-1"})
        svc = await client.services.get(unique, "shop", "web")
        assert [(r.name, r.version) for r in svc.spec.secrets] == [("shop_f", 2), ("shop_e", 1)]
        revisions = await client.applications.revisions(unique, "shop")
    dump = await etcd_dump(ccs_server.etcd_url, f"/ccs/c/{unique}/")
    assert dump and from_file not in dump and from_env not in dump and b"new-value-1" not in dump
    assert all(from_file not in r.SerializeToString() and b"new-value-1" not in r.SerializeToString()
               for r in revisions)
    out = cli(ccs_server, "app", "get", "shop", "-c", unique, "-o", "json").stdout
    assert "file-secret" not in out and "env-secret" not in out and "new-value-1" not in out


async def test_a_refused_deploy_stores_none_of_its_own_values(ccs_server: Any, unique: str) -> None:
    """The application's own values are written in its transaction: a template the cluster's
    policy refuses (checked after they are prepared) leaves nothing behind."""
    template = """
services:
  web:
    image: local/busybox:1
    cap_add: [NET_ADMIN]
    configs: [conf]
configs:
  conf: {content: "a=1"}
"""
    async with ccs_server.client() as client:
        await client.clusters.create(unique)
        with pytest.raises(ccs.PermissionDenied, match="cap_add"):
            await client.applications.create(unique, "shop", template)
        assert await client.configs.list(unique) == []
        await client.clusters.update(unique, allow=["cap_add"])
        await client.applications.create(unique, "shop", template)
        assert [(c.name, c.version) for c in await client.configs.list(unique)] == [("shop_conf", 1)]


async def test_no_secret_value_stays_with_the_application_however_bundled_or_used(ccs_server: Any, unique: str) -> None:
    """An SDK client bundles the file under the template's own spelling (``./db.txt``), and
    secrets no chosen service mounts (a profile not chosen, no service at all) have values too:
    none of them stays in the stored application, its revisions or ``-o json``."""
    template = """
services:
  web:
    image: local/busybox:1
    secrets: [db]
  dbg:
    image: local/busybox:1
    profiles: [debug]
    secrets: [tok]
secrets:
  db: {file: ./db.txt}
  tok: {file: tok.txt}
  unused: {environment: UNUSED_PW}
"""
    values = (b"S3CRET-DB-41f0", b"S3CRET-TOK-77aa", b"S3CRET-ENV-0c2d")
    async with ccs_server.client() as client:
        await client.clusters.create(unique)
        await client.applications.create(
            unique, "shop", template, files={"./db.txt": values[0].decode(), "tok.txt": values[1].decode()},
            env={"UNUSED_PW": values[2].decode()})
        # A re-parse of the stored template (no files given) finds every value in the store.
        await client.applications.update(unique, "shop", version="2")
        answer = (await client.applications.get(unique, "shop")).SerializeToString()
        revisions = await client.applications.revisions(unique, "shop")
        assert {s.name for s in await client.secrets.list(unique)} == {"shop_db", "shop_tok", "shop_unused"}
    dump = await etcd_dump(ccs_server.etcd_url, f"/ccs/c/{unique}/")
    out = cli(ccs_server, "app", "get", "shop", "-c", unique, "-o", "json").stdout
    for value in values:
        assert value not in answer and value not in dump and value.decode() not in out
        assert all(value not in r.SerializeToString() for r in revisions)
