"""Deploy triggers on a real ccs-server and a real etcd (issue 13, "Triggers").

Calls go over the server's HTTPS port (httpx, verifying the server against its CA), signed as a
CI job (ccs's form) or GitHub (its form) signs them. Each refusal is checked to change nothing:
the application's revision and template, its services and the delivery claims in etcd are the
same after it. No agents run: a release stays in progress, which is all a trigger answer needs.
"""

from __future__ import annotations

import asyncio
import json
import time
import uuid

import aetcd
import pytest

import ccs
from ccs.errors import PermissionDenied
from controlplane.triggers.records import DELIVERIES
from controlplane.triggers.signature import github_signature
from tests.conftest import ServerProc
from tests.integration.trigger_helpers import TEMPLATE, Setup, ccs_headers, http, post, prepare, state

pytestmark = pytest.mark.etcd


@pytest.fixture
async def setup(ccs_server: ServerProc, unique: str) -> Setup:
    return await prepare(ccs_server, unique)


async def test_a_signed_update_image_call_starts_a_release_and_its_status_url_answers(setup: Setup) -> None:
    body = json.dumps({"tag": "v2", "version": "2.0"}).encode()
    r = await post(setup, "retag", body, ccs_headers(setup.secrets["retag"], body))
    assert r.status_code == 200, r.text
    doc = r.json()
    assert doc["result"] == "released" and doc["release"] == "r000001" and doc["action"] == "update-image"
    async with setup.server.client() as cl:
        got = await cl.applications.get(setup.cluster, "shop")
        web = await cl.services.get(setup.cluster, "shop", "web")
    assert "image: local/webapp:v2   # the tag CI moves" in got.application.spec.template  # comment kept
    assert web.spec.image == "local/webapp:v2" and got.application.spec.version == "2.0"
    async with http(setup.server) as h:
        status = await h.get(doc["status_url"].removeprefix(setup.server.http_url))
        assert status.status_code == 200
        assert status.json()["release"] == "r000001" and status.json()["phase"] == "progressing"
        assert status.json()["done"] is False
        forged = doc["status_url"].removeprefix(setup.server.http_url)[:-4] + "0000"
        assert (await h.get(forged)).status_code == 404


async def test_a_github_signed_redeploy_is_accepted_unmodified(setup: Setup) -> None:
    """A GitHub push event: its own JSON keys, its signature header and delivery id."""
    body = json.dumps({"ref": "refs/heads/main", "after": "abc", "repository": {"name": "shop"}}).encode()
    headers = {"content-type": "application/json", "x-github-event": "push",
               "x-github-delivery": str(uuid.uuid4()),
               "x-hub-signature-256": github_signature(setup.secrets["again"].encode(), body)}
    r = await post(setup, "again", body, headers)
    assert r.status_code == 200, r.text
    assert r.json()["result"] == "unchanged" and r.json()["release"] == "" and r.json()["status_url"] == ""


async def test_githubs_ping_is_answered_and_acts_on_nothing(setup: Setup) -> None:
    body = json.dumps({"zen": "Keep it logically awesome.", "hook_id": 1}).encode()
    before = await state(setup)
    headers = {"content-type": "application/json", "x-github-event": "ping", "x-github-delivery": str(uuid.uuid4()),
               "x-hub-signature-256": github_signature(setup.secrets["retag"].encode(), body)}
    r = await post(setup, "retag", body, headers)
    assert r.status_code == 200 and r.json()["result"] == "pong", r.text
    assert await state(setup) == before


async def test_scale_takes_replicas_from_the_body(setup: Setup) -> None:
    body = b'{"replicas": 4}'
    r = await post(setup, "scale", body, ccs_headers(setup.secrets["scale"], body))
    assert r.status_code == 200, r.text
    assert r.json()["result"] == "scaled"
    assert (await state(setup))[2] == 4


async def test_refusals_change_nothing(setup: Setup) -> None:
    body = b'{"tag": "v9"}'
    secret = setup.secrets["retag"]
    before = await state(setup)
    cases: list[tuple[str, dict[str, str], int, str]] = [
        ("bad signature", ccs_headers("not-the-secret", body), 401, "x-ccs-signature: does not match"),
        ("old timestamp", ccs_headers(secret, body, at=time.time() - 301), 401, "x-ccs-timestamp"),
        ("future timestamp", ccs_headers(secret, body, at=time.time() + 400), 401, "x-ccs-timestamp"),
        ("unsigned", {"x-ccs-delivery": "d1"}, 401, "unsigned"),
        ("github, wrong secret", {"x-github-delivery": "g1",
                                  "x-hub-signature-256": github_signature(b"other", body)}, 401, "does not match"),
        ("no delivery id", {k: v for k, v in ccs_headers(secret, body).items() if k != "x-ccs-delivery"}, 401,
         "x-ccs-delivery: missing"),
    ]
    for what, headers, code, says in cases:
        r = await post(setup, "retag", body, headers)
        assert (r.status_code, says in r.json()["error"]) == (code, True), (what, r.text)
        assert secret not in r.text
    r = await post(setup, "nope", body, ccs_headers(secret, body))
    assert r.status_code == 404 and "no trigger shop/nope" in r.json()["error"]
    bad_tag = b'{"tag": "no spaces allowed"}'
    r = await post(setup, "retag", bad_tag, ccs_headers(secret, bad_tag))
    assert r.status_code == 400 and r.json()["error"].startswith("tag:")
    assert await state(setup) == before


async def test_a_replay_is_refused_and_changes_nothing(setup: Setup) -> None:
    body = b'{"tag": "v2"}'
    secret = setup.secrets["retag"]
    r = await post(setup, "retag", body, ccs_headers(secret, body, delivery="build-41"))
    assert r.status_code == 200, r.text
    before = await state(setup)
    # Freshly signed, same delivery id: a replay.
    r = await post(setup, "retag", b'{"tag": "v3"}', ccs_headers(secret, b'{"tag": "v3"}', delivery="build-41"))
    assert r.status_code == 401 and "replay" in r.json()["error"]
    assert await state(setup) == before


async def test_a_failed_action_gives_its_delivery_back(setup: Setup) -> None:
    """The redelivery of a call whose action was refused may try again."""
    async with setup.server.client() as cl:
        await cl.applications.update(setup.cluster, "shop", env={"TAG": "v1"},
                                     template=TEMPLATE.replace("local/webapp:v1", "local/webapp:${TAG}"))
    body = b'{"tag": "v2"}'
    secret = setup.secrets["retag"]
    r = await post(setup, "retag", body, ccs_headers(secret, body, delivery="build-7"))
    assert r.status_code == 409 and "interpolated" in r.json()["error"]
    assert (await state(setup))[3] == 0
    async with setup.server.client() as cl:
        await cl.applications.update(setup.cluster, "shop", template=TEMPLATE)
    r = await post(setup, "retag", body, ccs_headers(secret, body, delivery="build-7"))
    assert r.status_code == 200, r.text


async def test_rotate_and_remove(setup: Setup) -> None:
    body = b'{"replicas": 2}'
    async with setup.server.client() as cl:
        rotated = await cl.triggers.rotate(setup.cluster, "shop", "scale")
        assert rotated.trigger.secret_version == 2 and rotated.secret != setup.secrets["scale"]
        r = await post(setup, "scale", body, ccs_headers(setup.secrets["scale"], body))
        assert r.status_code == 401  # the old secret stopped working
        r = await post(setup, "scale", body, ccs_headers(rotated.secret, body))
        assert r.status_code == 200, r.text
        await cl.triggers.delete(setup.cluster, "shop", "scale")
        assert [t.meta.name for t in await cl.triggers.list(setup.cluster, "shop")] == ["again", "retag"]
    r = await post(setup, "scale", body, ccs_headers(rotated.secret, body))
    assert r.status_code == 404


async def test_a_deleted_applications_triggers_go_with_it(setup: Setup) -> None:
    """Removing the application removes its triggers, their secrets and deliveries in its own
    transaction: a trigger made for it never acts on an application made later under its name."""
    body = b'{"replicas": 2}'
    assert (await post(setup, "scale", body, ccs_headers(setup.secrets["scale"], body))).status_code == 200
    async with setup.server.client() as cl:
        await cl.applications.delete(setup.cluster, "shop")
        for _ in range(300):  # the reconciler removes it (its containers: none)
            try:
                await cl.applications.get(setup.cluster, "shop")
            except ccs.errors.NotFound:
                break
            await asyncio.sleep(0.1)
        await cl.applications.create(setup.cluster, "shop", TEMPLATE)
        assert await cl.triggers.list(setup.cluster, "shop") == []
    host, port = setup.server.etcd_url.removeprefix("http://").split(":")
    async with aetcd.Client(host=host, port=int(port)) as etcd:
        for prefix in (f"/ccs/secrets/{setup.cluster}/trigger/", f"{DELIVERIES}{setup.cluster}/"):
            assert not (await etcd.get_prefix(prefix.encode(), keys_only=True)).kvs, prefix
    r = await post(setup, "scale", body, ccs_headers(setup.secrets["scale"], body))
    assert r.status_code == 404 and "no trigger shop/scale" in r.json()["error"]


async def test_the_rate_limit_answers_429(setup: Setup) -> None:
    body = b"{}"
    codes = []
    async with http(setup.server) as h:
        for _ in range(100):  # the burst is 10 and one call a second refills: 100 calls outrun it
            r = await h.post(f"/v1/triggers/{setup.cluster}/shop/again", content=body,
                             headers=ccs_headers("wrong", body))
            codes.append(r.status_code)
            if r.status_code == 429:
                assert int(r.headers["retry-after"]) >= 1
                break
    assert codes[-1] == 429 and set(codes[:-1]) == {401}


async def test_the_trigger_role_calls_one_applications_triggers_and_nothing_else(setup: Setup) -> None:
    async with setup.server.client() as admin:
        with pytest.raises(ccs.errors.InvalidArgument, match="exactly one cluster and one application"):
            await admin.tokens.create(f"ci-{setup.cluster}-x", role="trigger", clusters=[setup.cluster])
        made = await admin.tokens.create(f"ci-{setup.cluster}", role="trigger", clusters=[setup.cluster],
                                         applications=["shop"])
        await admin.applications.create(setup.cluster, "other", TEMPLATE)
        await admin.triggers.create(setup.cluster, "other", "again", "redeploy")
    async with setup.server.client(token=made.secret) as ci:
        done = await ci.triggers.invoke(setup.cluster, "shop", "retag", tag="v5")
        assert done.result == "released" and done.status_url.startswith(setup.server.http_url)
        with pytest.raises(PermissionDenied):
            await ci.triggers.invoke(setup.cluster, "other", "again")
        with pytest.raises(PermissionDenied):
            await ci.applications.list(setup.cluster)
        with pytest.raises(PermissionDenied):
            await ci.triggers.list(setup.cluster, "shop")
        with pytest.raises(PermissionDenied):
            await ci.triggers.rotate(setup.cluster, "shop", "retag")
        with pytest.raises(PermissionDenied):
            await ci.services.scale(setup.cluster, "shop", "web", 3)


async def test_every_call_is_audited_and_the_secret_appears_nowhere(setup: Setup) -> None:
    secret = setup.secrets["retag"]
    body = b'{"tag": "v2"}'
    ok = await post(setup, "retag", body, ccs_headers(secret, body, delivery="audited-1"))
    bad = await post(setup, "retag", body, ccs_headers("wrong", body, delivery="audited-2"))
    assert (ok.status_code, bad.status_code) == (200, 401)
    async with setup.server.client() as cl:
        records = [r for r in await cl.audit.list() if r.target == f"trigger {setup.cluster}/shop/retag"]
        events = await cl.events.list(setup.cluster)
        listed = await cl.triggers.list(setup.cluster)
    results = {r.message.split(":")[0]: r.result for r in records if r.method == "Trigger/POST"}
    assert results["delivery audited-1"] == "OK" and results["delivery audited-2"] == "UNAUTHENTICATED"
    accepted = next(r for r in records if r.message.startswith("delivery audited-1"))
    assert accepted.wrote and accepted.revision > 0 and accepted.role == "trigger"  # rode on the change
    seen = [setup.server.log_path.read_text(), str(records), str(events), str(listed),
            json.dumps([json.loads(json.dumps(str(t))) for t in listed])]
    for name, value in setup.secrets.items():
        for text in seen:
            assert value not in text, name


async def test_a_deleted_clusters_triggers_go_with_it(setup: Setup) -> None:
    async with setup.server.client() as cl:
        await cl.clusters.delete(setup.cluster, force=True)
    host, port = setup.server.etcd_url.removeprefix("http://").split(":")
    async with aetcd.Client(host=host, port=int(port)) as etcd:
        for prefix in (f"/ccs/triggers/{setup.cluster}/", f"/ccs/secrets/{setup.cluster}/",
                       f"{DELIVERIES}{setup.cluster}/"):
            assert not (await etcd.get_prefix(prefix.encode(), keys_only=True)).kvs, prefix
