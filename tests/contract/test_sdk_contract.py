"""One contract, two servers: the SDK against the in-process fake (``ccs.testing``) and against a
real ``ccs-server`` on a real etcd, through the same tests (the ``backend`` fixture is
parametrized).

Why: SDK and CLI tests assert error codes and messages against the fake. Those are only worth
something if the fake answers what the server answers, so every code and message they rely on
is asserted here, exactly, against both. When the two disagree, the fake is fixed to match the
server. What the fake deliberately does not model (placement, agents, the release planner
acting on requests) is not asserted here.
"""

from __future__ import annotations

import pytest

import ccs
from ccs.v1 import api_pb2
from ccs.v1 import resources_pb2 as pb

from .backends import V1, Backend, deployed, error, raw

pytestmark = [pytest.mark.timeout(60), pytest.mark.etcd]

# ---------------------------------------------------------------- auth


async def test_a_wrong_or_missing_token_is_unauthenticated(backend: Backend) -> None:
    for token, message in (("", "missing bearer token (metadata 'authorization: Bearer <token>')"),
                           ("ccs_not-the-token", "invalid or revoked token")):
        async with backend.client(token) as c:
            e = await error(c.clusters.list())
            assert isinstance(e, ccs.Unauthenticated) and e.message == message
            watch = c.events.watch("x", 1)
            e = await error(anext(watch))
            await watch.aclose()
            assert isinstance(e, ccs.Unauthenticated) and e.message == message


# ---------------------------------------------------------------- clusters


async def test_application_errors(client: ccs.AsyncClient, unique: str) -> None:
    app = await deployed(client, unique)
    e = await error(client.applications.create(unique, "shop", V1))
    assert isinstance(e, ccs.AlreadyExists) and e.message == "application 'shop' already exists"
    e = await error(client.applications.get(unique, "nope"))
    assert isinstance(e, ccs.NotFound) and e.message == "application 'nope' not found"
    e = await error(client.applications.create(unique, "other", "services:\n  web: {deploy: {replicas: 1}}\n"))
    assert isinstance(e, ccs.InvalidArgument) and e.message.startswith("services.web"), e.message
    e = await error(client.applications.create(unique, "other", "services: {}\n"))
    assert isinstance(e, ccs.InvalidArgument) and e.message.startswith("services"), e.message
    stale = app.meta.resource_version - 1
    e = await error(client.applications.update(unique, "shop", version="2", resource_version=stale))
    assert isinstance(e, ccs.Conflict)
    assert e.message.startswith(f"application 'shop' was modified concurrently (resource_version {stale} "
                                "is stale, current is "), e.message
    e = await error(client.applications.delete(unique, "shop", resource_version=stale))
    assert isinstance(e, ccs.Conflict) and "is stale" in e.message


async def test_an_application_reads_back_as_written(client: ccs.AsyncClient, unique: str) -> None:
    app = await deployed(client, unique)
    assert (app.revision, app.spec.template, app.spec.template_revision) == (1, V1, 1)
    got = await client.applications.get(unique, "shop")
    assert (got.application.spec.template, got.application.spec.template_revision) == (V1, 1)
    assert sorted((s.meta.name, s.spec.replicas, s.generation) for s in got.services) == [("db", 1, 1), ("web", 2, 1)]
    updated = await client.applications.update(unique, "shop", version="2")
    # the template is stored once, in the revision that introduced it; answers fill it back
    assert (updated.revision, updated.spec.template, updated.spec.template_revision) == (2, V1, 1)
    assert (await client.applications.get(unique, "shop")).application.spec.template == V1
    revs = await client.applications.revisions(unique, "shop")
    assert [(r.revision, r.note) for r in revs] == [(1, "deploy"), (2, "update")]
    assert revs[1].spec.template == V1
    e = await error(client.releases.get(unique, "shop"))  # nothing in a service changed: no release
    assert isinstance(e, ccs.NotFound)


async def test_apply_creates_then_updates_only_what_changed(client: ccs.AsyncClient, unique: str) -> None:
    await client.clusters.create(unique)
    first = await client.applications.apply(unique, "shop", V1, env={"TAG": "v1"}, version="1")
    assert (first.outcome, first.application.revision, first.changed) == ("created", 1, True)
    again = await client.applications.apply(unique, "shop", V1, env={"TAG": "v1"}, version="1")
    assert (again.outcome, again.application.revision, again.changed) == ("unchanged", 1, False)
    assert [r.revision for r in await client.applications.revisions(unique, "shop")] == [1]
    e = await error(client.releases.get(unique, "shop"))  # unchanged: no release
    assert isinstance(e, ccs.NotFound)
    moved = await client.applications.apply(unique, "shop", V1, env={"TAG": "v2"})
    assert (moved.outcome, moved.application.revision, moved.application.spec.version) == ("updated", 2, "1")
    release = await client.releases.get(unique, "shop")
    assert release.spec.to_revision == 2
    cleared = await client.applications.apply(unique, "shop", V1)  # declarative: no --env clears them
    assert (cleared.outcome, dict(cleared.application.spec.env)) == ("updated", {})
    e = await error(client.applications.apply(unique, "shop", "services:\n  web: {deploy: {replicas: 1}}\n"))
    assert isinstance(e, ccs.InvalidArgument) and e.message.startswith("services.web"), e.message


async def test_reads_of_missing_things_name_them(client: ccs.AsyncClient, unique: str) -> None:
    e = await error(client.applications.list(unique))
    assert isinstance(e, ccs.NotFound) and e.message == f"cluster {unique!r} not found"
    e = await error(client.containers.list(unique))
    assert isinstance(e, ccs.NotFound) and e.message == f"cluster {unique!r} not found"
    await deployed(client, unique)
    for call, message in [
        (client.services.get(unique, "shop", "nope"), "service 'shop/nope' not found"),
        (client.containers.get(unique, "shop", "web", "nope"), "container 'nope' not found"),
        (client.nodes.get(unique, "nope"), "node 'nope' not found"),
        (client.releases.list(unique, "nope"), "application 'nope' not found"),
        (client.applications.revisions(unique, "nope"), "application 'nope' not found"),
        (client.applications.rollback(unique, "nope"), "application 'nope' not found"),
    ]:
        e = await error(call)
        assert isinstance(e, ccs.NotFound) and e.message == message
    e = await error(client.clusters.create("Bad_Name"))
    assert isinstance(e, ccs.InvalidArgument) and e.message == (
        "name: 'Bad_Name' is not a valid name: use at most 63 lowercase letters, digits and '-', "
        "starting and ending with a letter or digit")
    e = await error(client.clusters.create(f"{unique}\n"))  # a trailing newline is no part of a name
    assert isinstance(e, ccs.InvalidArgument) and e.message.startswith(f"name: '{unique}\\n' is not a valid name")


async def test_exec_checks_the_command_and_names_a_missing_container(client: ccs.AsyncClient, unique: str) -> None:
    await deployed(client, unique)
    e = await error(client.containers.exec_run(unique, "shop", "web", "web-1-0000", []))
    assert isinstance(e, ccs.InvalidArgument)
    assert e.message == "command: must name a program to run (ccs exec CONTAINER -- CMD...)"
    e = await error(client.containers.exec_run(unique, "shop", "web", "nope", ["true"]))
    assert isinstance(e, ccs.NotFound) and e.message == "container 'nope' not found"


async def test_scale_checks_the_limit_and_the_version(client: ccs.AsyncClient, unique: str) -> None:
    await deployed(client, unique)
    e = await error(client.services.scale(unique, "shop", "web", 5000))
    assert isinstance(e, ccs.InvalidArgument) and e.message == "replicas: 5000 exceeds the limit of 1000"
    e = await error(client.services.scale(unique, "shop", "web", 3, resource_version=1))
    assert isinstance(e, ccs.Conflict) and e.message.startswith(
        "service 'shop/web' was modified concurrently (resource_version 1 is stale, current is "), e.message
    scaled = await client.services.scale(unique, "shop", "web", 3)  # the reconciler writes status meanwhile
    assert (scaled.spec.replicas, scaled.status.desired) == (3, 3)


async def test_filters_and_watch_kinds_are_checked(client: ccs.AsyncClient, backend: Backend, unique: str) -> None:
    await client.clusters.create(unique)
    e = await error(client.containers.list(unique, service="web"))
    assert isinstance(e, ccs.InvalidArgument)
    assert e.message == "service: filtering by service needs application too"
    watch = client.events.watch(unique, 1, ["bogus"])
    e = await error(anext(watch))
    await watch.aclose()
    assert isinstance(e, ccs.InvalidArgument)
    assert e.message == ("kinds[0]: 'bogus' is not one of cluster, node, application, service, container, "
                         "event, release"), e.message


# ---------------------------------------------------------------- releases


async def test_release_reads_and_requests(client: ccs.AsyncClient, backend: Backend, unique: str) -> None:
    await deployed(client, unique)
    e = await error(client.releases.get(unique, "shop"))
    assert isinstance(e, ccs.NotFound)
    assert e.message == "release 'shop (the application has had no release yet)' not found"
    app = await client.applications.update(unique, "shop", env={"TAG": "v2"}, strategy="blue-green")
    rel = await client.releases.get(unique, "shop")
    assert rel.meta.name == "r000001" and rel.number == 1 and rel.spec.strategy == "blue-green"
    assert (rel.spec.from_revision, rel.spec.to_revision) == (1, app.revision)
    assert list(rel.spec.services) == ["web"]  # db did not change
    assert [r.meta.name for r in await client.releases.list(unique, "shop")] == ["r000001"]
    assert (await client.releases.get(unique, "shop", "r000001")).meta.name == "r000001"
    e = await error(client.releases.get(unique, "shop", "r1x"))
    assert isinstance(e, ccs.InvalidArgument) and e.message == "name: 'r1x' is not a release name like r000003"
    e = await error(client.releases.promote(unique, "shop"))
    assert isinstance(e, ccs.FailedPrecondition)
    assert e.message == "promote applies to rolling and canary releases; r000001 is blue-green"
    e = await error(client.releases.abort(unique, "shop"))
    assert isinstance(e, ccs.FailedPrecondition)
    assert e.message == "abort applies to canary releases; r000001 is blue-green"
    e = await error(raw(client, backend).unary(
        raw(client, backend).releases.ShiftTraffic,
        api_pb2.ShiftTrafficRequest(cluster=unique, application="shop", weight=150), pb.Release))
    assert isinstance(e, ccs.InvalidArgument) and e.message == "weight: 150 is not a percentage (0-100)"
    e = await error(client.releases.shift(unique, "shop", 150))  # the SDK's own check says the same
    assert isinstance(e, ccs.InvalidArgument) and e.message == "weight: 150 is not a percentage (0-100)"
    shifted = await client.releases.shift(unique, "shop", 30)
    assert list(shifted.status.requests) == ["shift:30"]  # a request the planner acts on


async def test_a_newer_release_supersedes_one_in_progress(client: ccs.AsyncClient, unique: str) -> None:
    await deployed(client, unique)
    await client.applications.update(unique, "shop", env={"TAG": "v2"}, strategy="blue-green")
    await client.applications.update(unique, "shop", env={"TAG": "v3"})
    first, second = await client.releases.list(unique, "shop")
    assert first.status.phase == pb.RELEASE_PHASE_SUPERSEDED and "r000002" in first.status.message
    assert (second.meta.name, second.spec.strategy) == ("r000002", "rolling")


async def test_rollback_checks_the_revision(client: ccs.AsyncClient, unique: str) -> None:
    await deployed(client, unique)
    await client.applications.update(unique, "shop", env={"TAG": "v2"})
    e = await error(client.applications.rollback(unique, "shop", to_revision=2))
    assert isinstance(e, ccs.InvalidArgument)
    assert e.message == "to_revision: must be an earlier revision, 1..1 (current is 2)"
    e = await error(client.applications.rollback(unique, "shop", strategy="sideways"))
    assert isinstance(e, ccs.InvalidArgument)
    assert e.message == "strategy: 'sideways' is not one of rolling, blue-green, canary"
    app = await client.applications.rollback(unique, "shop", to_revision=1, strategy="blue-green")
    assert app.revision == 3
    rel = await client.releases.get(unique, "shop")
    assert (rel.spec.is_rollback, rel.spec.strategy, rel.spec.to_revision) == (True, "blue-green", 3)
    revs = await client.applications.revisions(unique, "shop")
    assert [(r.revision, r.note) for r in revs] == [(1, "deploy"), (2, "update"), (3, "rollback")]


@pytest.mark.parametrize(
    ("opts", "fields"),
    [
        (ccs.CanaryOptions(max_5xx_ratio=1.5),
         {"canary_analysis": pb.CanaryAnalysis(max_5xx_ratio=1.5)}),
        (ccs.CanaryOptions(match_header="x-beta"), {"match_header": "x-beta"}),
        (ccs.CanaryOptions(match_header="x-beta", match_cookie="beta", match_value="1"),
         {"match_header": "x-beta", "match_cookie": "beta", "match_value": "1"}),
    ],
)
async def test_the_sdks_canary_checks_say_what_the_server_says(
    client: ccs.AsyncClient, backend: Backend, unique: str, opts: ccs.CanaryOptions, fields: dict[str, object],
) -> None:
    await deployed(client, unique)
    with pytest.raises(ValueError) as local:
        opts.validate()
    t = raw(client, backend)
    req = api_pb2.UpdateApplicationRequest(cluster=unique, name="shop", env={"TAG": "v2"}, strategy="canary",
                                           **fields)  # type: ignore[arg-type]
    e = await error(t.unary(t.applications.UpdateApplication, req, pb.Application))
    assert isinstance(e, ccs.InvalidArgument) and e.message == str(local.value)


async def test_without_analysis_options_the_servers_defaults_apply(client: ccs.AsyncClient, unique: str) -> None:
    await deployed(client, unique)
    await client.applications.update(unique, "shop", env={"TAG": "v2"}, strategy="canary",
                                     canary=ccs.CanaryOptions(match_header="x-beta", match_value="1"))
    rel = await client.releases.get(unique, "shop")
    assert (rel.spec.analysis.max_5xx_ratio, rel.spec.analysis.min_requests) == (0.05, 20)
    assert (rel.spec.canary_replicas, [s.weight for s in rel.spec.steps]) == (1, [10, 50, 100])


async def test_canary_options_are_checked_by_the_server(client: ccs.AsyncClient, unique: str) -> None:
    await deployed(client, unique)
    opts = ccs.CanaryOptions(steps=ccs.parse_steps("10%,pause 30s,50%"))
    e = await error(client.applications.update(unique, "shop", env={"TAG": "v2"}, strategy="canary",
                                               canary=opts))
    assert isinstance(e, ccs.InvalidArgument)
    assert e.message == "canary_steps: the last step must send 100% of traffic to the new revision"
    e = await error(client.applications.update(unique, "shop", env={"TAG": "v2"}, strategy="sideways"))
    assert isinstance(e, ccs.InvalidArgument)
    assert e.message == "strategy: 'sideways' is not one of rolling, blue-green, canary"


# ---------------------------------------------------------------- damaged records


async def test_a_record_that_does_not_decode_is_data_loss_naming_it(
    client: ccs.AsyncClient, backend: Backend, unique: str,
) -> None:
    await deployed(client, unique)
    key = await backend.corrupt_service(client, unique, "shop", "web")
    e = await error(client.services.get(unique, "shop", "web"))
    assert isinstance(e, ccs.DataLoss) and not e.temporary
    assert e.message.startswith(f"service 'shop/web': the stored record at {key} does not decode ("), e.message
    assert e.message.endswith("); rewrite or delete it"), e.message
    assert (await client.services.get(unique, "shop", "db")).meta.name == "db"  # the rest is served


# ---------------------------------------------------------------- triggers


async def test_trigger_answers_and_errors(client: ccs.AsyncClient, unique: str) -> None:
    await deployed(client, unique)
    made = await client.triggers.create(unique, "shop", "ci", "scale", service="web")
    assert made.secret and made.trigger.secret_version == 1 and made.trigger.service == "web"
    e = await error(client.triggers.create(unique, "shop", "ci", "scale", service="web"))
    assert isinstance(e, ccs.AlreadyExists) and e.message == "trigger 'shop/ci' already exists"
    e = await error(client.triggers.create(unique, "shop", "x", "deploy"))
    assert isinstance(e, ccs.InvalidArgument)
    assert e.message == "action: must be one of redeploy, update-image, scale"
    e = await error(client.triggers.create(unique, "shop", "x", "redeploy", service="web"))
    assert e.message == "service: a redeploy trigger acts on the whole application; leave it out"
    e = await error(client.triggers.create(unique, "shop", "x", "update-image"))
    assert isinstance(e, ccs.InvalidArgument) and e.message == "service: is required"
    e = await error(client.triggers.create(unique, "shop", "x", "scale", service="nope"))
    assert isinstance(e, ccs.NotFound) and e.message == "service 'shop/nope' not found"
    e = await error(client.triggers.create(unique, "blog", "x", "redeploy"))
    assert isinstance(e, ccs.NotFound) and e.message == "application 'blog' not found"
    e = await error(client.triggers.create(unique, "shop", "x", "redeploy", callback_url="ftp://h/x"))
    assert e.message == "callback_url: must be an http:// or https:// URL with a host"
    e = await error(client.triggers.create(unique, "shop", "x", "redeploy", callback_url="http://127.0.0.1:2379/v3"))
    assert isinstance(e, ccs.InvalidArgument)
    assert e.message == ("callback_url: 127.0.0.1, a loopback address; callbacks go to CI servers, not to the "
                         "control plane's hosts")
    e = await error(client.triggers.create(unique, "shop", "x", "redeploy", callback_url="http://10.1.2.3/hook"))
    assert e.message == ("callback_url: 10.1.2.3, a private address (the server allows those only with "
                         "--allow-private-callbacks); callbacks go to CI servers, not to the control plane's hosts")
    rotated = await client.triggers.rotate(unique, "shop", "ci")
    assert rotated.trigger.secret_version == 2 and rotated.secret != made.secret
    listed = await client.triggers.list(unique, "shop")
    assert [(t.meta.name, t.secret_version) for t in listed] == [("ci", 2)]
    assert made.secret not in str(listed) and rotated.secret not in str(listed)
    done = await client.triggers.invoke(unique, "shop", "ci", replicas=5)
    assert (done.result, done.release, done.message) == ("scaled", "", "service shop/web: 5 replicas")
    assert (await client.services.get(unique, "shop", "web")).spec.replicas == 5
    e = await error(client.triggers.invoke(unique, "shop", "ci"))
    assert isinstance(e, ccs.InvalidArgument) and e.message == "replicas: scale needs the number of replicas"
    e = await error(client.triggers.invoke(unique, "shop", "nope"))
    assert isinstance(e, ccs.NotFound) and e.message == f"no trigger shop/nope in cluster {unique}"
    await client.triggers.delete(unique, "shop", "ci")
    e = await error(client.triggers.delete(unique, "shop", "ci"))
    assert isinstance(e, ccs.NotFound) and e.message == "trigger 'shop/ci' not found"
    e = await error(client.triggers.rotate(unique, "shop", "ci"))
    assert isinstance(e, ccs.NotFound) and e.message == "trigger 'shop/ci' not found"
    assert await client.triggers.list(unique) == []
