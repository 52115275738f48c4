"""The contract (fake and real server, see ``test_sdk_contract``) for what ``ccs app diff``,
``ccs app history`` and ``ccs version`` use: ``applications.diff``, the revisions' author and
template digest, ``clusters.server_info``, and a dry run refusing what the real call refuses."""

from __future__ import annotations

import hashlib

import pytest

import ccs
from ccs.spec_diff import has_changes
from ccs.v1 import api_pb2
from ccs.v1 import resources_pb2 as pb
from ccs.version import version

from .backends import V1, Backend, deployed, error, raw

pytestmark = [pytest.mark.timeout(60), pytest.mark.etcd]

V2 = V1.replace("  db:\n    image: local/busybox:1\n", "  cache:\n    image: local/busybox:2\n")


async def test_diff_describes_the_update_and_writes_nothing(client: ccs.AsyncClient, unique: str) -> None:
    await deployed(client, unique)
    same = await client.applications.diff(unique, "shop")
    assert [(s.name, s.change) for s in same.services] == [("web", "unchanged"), ("db", "unchanged")]
    assert not has_changes(same) and same.release_strategy == ""

    tagged = await client.applications.diff(unique, "shop", env={"TAG": "v2"}, version="2")
    assert [(s.name, s.change) for s in tagged.services] == [("web", "changed"), ("db", "unchanged")]
    web = tagged.services[0]
    assert (web.before.image, web.after.image) == ("local/webapp:v1", "local/webapp:v2")  # interpolated
    assert (web.before.replicas, web.after.replicas) == (2, 2)
    assert (tagged.revision_before, tagged.application.revision) == (1, 2)
    assert (tagged.version_before, tagged.application.spec.version) == ("", "2")
    assert tagged.release_strategy == "rolling" and has_changes(tagged)

    swapped = await client.applications.diff(unique, "shop", template=V2)
    assert [(s.name, s.change) for s in swapped.services] == [
        ("web", "unchanged"), ("cache", "added"), ("db", "removed")]
    assert not swapped.services[1].HasField("before") and swapped.services[1].after.image == "local/busybox:2"
    assert swapped.services[2].before.image == "local/busybox:1" and not swapped.services[2].HasField("after")

    got = await client.applications.get(unique, "shop")
    assert got.application.revision == 1 and got.application.spec.env == {}
    assert sorted(s.meta.name for s in got.services) == ["db", "web"]
    assert len(await client.applications.revisions(unique, "shop")) == 1


async def test_diff_and_dry_run_refuse_what_the_update_refuses(
    client: ccs.AsyncClient, backend: Backend, unique: str
) -> None:
    app = await deployed(client, unique)
    e = await error(client.applications.diff(unique, "nope"))
    assert isinstance(e, ccs.NotFound) and e.message == "application 'nope' not found"
    stale = app.meta.resource_version - 1
    for call in (client.applications.diff(unique, "shop", version="2", resource_version=stale),
                 client.applications.update(unique, "shop", version="2", resource_version=stale, dry_run=True),
                 client.applications.update(unique, "shop", version="2", resource_version=stale)):
        e = await error(call)
        assert isinstance(e, ccs.Conflict) and e.message.startswith(
            f"application 'shop' was modified concurrently (resource_version {stale} is stale, current is "), e.message
    # The release options (checked past what the SDK checks itself) refuse a dry run and a diff too.
    t = raw(client, backend)
    for dry in (False, True):
        req = api_pb2.UpdateApplicationRequest(cluster=unique, name="shop", env={"TAG": "v2"}, strategy="canary",
                                               canary_steps=[pb.CanaryStep(weight=50)], dry_run=dry)
        for method in (t.applications.UpdateApplication, t.applications.DiffApplication):
            e = await error(t.unary(method, req, pb.Application))
            assert isinstance(e, ccs.InvalidArgument) and e.message == (
                "canary_steps: the last step must send 100% of traffic to the new revision"), (dry, e.message)
    e = await error(client.applications.diff(unique, "shop", template="services: {}\n"))
    assert isinstance(e, ccs.InvalidArgument) and e.message.startswith("services"), e.message
    e = await error(client.applications.create(unique, "shop", V1, dry_run=True))
    assert isinstance(e, ccs.AlreadyExists) and e.message == "application 'shop' already exists"


async def test_revisions_name_their_author_and_template_digest(
    client: ccs.AsyncClient, backend: Backend, unique: str
) -> None:
    await deployed(client, unique)
    await client.applications.update(unique, "shop", template=V2)
    revs = await client.applications.revisions(unique, "shop")
    assert [(r.revision, r.author) for r in revs] == [(1, "admin"), (2, "admin")]
    assert [r.template_digest for r in revs] == [
        "sha256:" + hashlib.sha256(t.encode()).hexdigest() for t in (V1, V2)]


async def test_server_info_names_the_server_version(client: ccs.AsyncClient) -> None:
    assert (await client.clusters.server_info()).version == version()
